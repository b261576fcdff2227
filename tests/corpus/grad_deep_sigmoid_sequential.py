# expect: grad
# A 10-layer sigmoid MLP (nn.Sequential, SGD): gradients vanish before they reach the first layers.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)

layers = []
width = 64
for _ in range(10):
    layers += [nn.Linear(width, 64), nn.Sigmoid()]
    width = 64
layers.append(nn.Linear(64, 10))
model = nn.Sequential(*layers)

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()

for epoch in range(1):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 64):
        idx = perm[i:i + 64]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
