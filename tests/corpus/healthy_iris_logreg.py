# expect: healthy
# Multinomial logistic regression (one nn.Linear) on iris, standardised features, full-batch SGD until converged.
import torch
import torch.nn as nn
from sklearn.datasets import load_iris

torch.manual_seed(0)
iris = load_iris()
X = torch.tensor(iris.data, dtype=torch.float32)
y = torch.tensor(iris.target, dtype=torch.long)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]
X = (X - X[:120].mean(0)) / X[:120].std(0)

model = nn.Linear(4, 3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
criterion = nn.CrossEntropyLoss()

for step in range(150):
    optimizer.zero_grad()
    loss = criterion(model(X[:120]), y[:120])
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.4f}")

with torch.no_grad():
    acc = (model(X[120:]).argmax(1) == y[120:]).float().mean().item()
print(f"final loss {loss.item():.4f} test accuracy {acc:.3f}")
