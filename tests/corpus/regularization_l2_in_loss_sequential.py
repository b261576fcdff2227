# expect: regularization
# An L2 penalty written into the loss by hand with lam=0.1 (nn.Sequential, SGD, top-level loop): sum(p.pow(2).sum()) over every parameter outweighs the cross-entropy and pins the weights near zero.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32) / 16.0
y = torch.tensor(y)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()
lam = 0.1
for epoch in range(3):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 64):
        idx = perm[i:i + 64]
        optimizer.zero_grad()
        l2 = sum(p.pow(2).sum() for p in model.parameters())
        loss = criterion(model(X[idx]), y[idx]) + lam * l2
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
