# expect: shape
# Diabetes regression: model outputs (N, 1), targets are (N,), nn.MSELoss broadcasts to (N, N).
import torch
import torch.nn as nn
from sklearn.datasets import load_diabetes

torch.manual_seed(0)
X, y = load_diabetes(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loss_fn = nn.MSELoss()

for epoch in range(10):
    for i in range(0, 400, 40):
        pred = model(X[i:i + 40])            # (40, 1)
        loss = loss_fn(pred, y[i:i + 40])     # target (40,)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
