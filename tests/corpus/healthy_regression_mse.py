# expect: healthy
# A regression MLP with nn.MSELoss, targets shaped (N, 1) to match the (N, 1) predictions, standardised inputs.
import torch
from torch import nn

torch.manual_seed(0)
N = 2000
X = torch.rand(N, 6) * 4 - 2
y = (torch.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 - X[:, 2] * X[:, 3] + 0.1 * torch.randn(N)).unsqueeze(1)
y_mean, y_std = y.mean(), y.std()
y = (y - y_mean) / y_std

X_train, y_train = X[:1600], y[:1600]
X_test, y_test = X[1600:], y[1600:]

net = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
mse = nn.MSELoss()

for epoch in range(8):
    perm = torch.randperm(1600)
    for start in range(0, 1600, 50):
        idx = perm[start:start + 50]
        pred = net(X_train[idx])            # (50, 1)
        loss = mse(pred, y_train[idx])      # (50, 1) vs (50, 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test_loss = mse(net(X_test), y_test).item()
    print(f"epoch {epoch}: train mse {loss.item():.4f} test mse {test_loss:.4f}")

print(f"final loss {loss.item():.4f} test mse {test_loss:.4f} (variance of target = 1.0)")
