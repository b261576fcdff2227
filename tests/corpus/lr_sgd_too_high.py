# expect: lr
# Digits MLP (nn.Sequential, top-level loop) trained with plain SGD at lr=5: the first updates wreck the weights.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
criterion = nn.CrossEntropyLoss()

for epoch in range(4):
    perm = torch.randperm(len(X))
    for i in range(0, len(X) - 32, 32):
        idx = perm[i:i + 32]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
