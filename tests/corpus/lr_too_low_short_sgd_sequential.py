# expect: lr
# A Keras model ported to PyTorch keeps its SGD(lr=1e-5) for 5 epochs of 10 batches (50 steps, nn.Sequential, top-level loop): the loss does not move at all.
import torch
import torch.nn as nn
from sklearn.datasets import load_wine

torch.manual_seed(0)
X, y = load_wine(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(y)
X, y = X.repeat(4, 1)[:640], y.repeat(4)[:640]

model = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-5)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(5):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 64):
        idx = perm[i:i + 64]
        optimizer.zero_grad()
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
