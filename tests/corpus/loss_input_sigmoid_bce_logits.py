# expect: loss-input
# Breast-cancer binary classifier: nn.Sequential ends in nn.Sigmoid but the loss is nn.BCEWithLogitsLoss.
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
X, y = load_breast_cancer(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(y, dtype=torch.float32)

model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

for epoch in range(10):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 32):
        idx = perm[i:i + 32]
        probs = model(X[idx]).squeeze(1)
        loss = criterion(probs, y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    acc = ((model(X).squeeze(1) > 0.5).float() == y).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} acc {acc:.3f}")
