# expect: loss-input
# Diabetes regression with standardised targets, but the model ends in nn.ReLU: negative targets are unreachable.
import torch
import torch.nn as nn
from sklearn.datasets import load_diabetes

torch.manual_seed(0)
X, y = load_diabetes(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()

model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1), nn.ReLU())
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
mse = nn.MSELoss()
for epoch in range(20):
    for i in range(0, 400, 32):
        pred = model(X[i:i + 32])
        loss = mse(pred, y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
with torch.no_grad():
    test = mse(model(X[400:]), y[400:]).item()
print(f"final train mse {loss.item():.4f} test mse {test:.4f}")
