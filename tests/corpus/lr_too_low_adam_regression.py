# expect: lr
# Regression MLP with Adam at lr=1e-7 (a typo for 1e-3): after hundreds of steps the loss has not moved.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(2000, 8)
w = torch.randn(8, 1)
y = torch.tanh(X @ w) + 0.1 * torch.randn(2000, 1)

model = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-7)
loss_fn = nn.MSELoss()

for epoch in range(6):
    for i in range(0, 2000, 32):
        pred = model(X[i:i + 32])
        loss = loss_fn(pred, y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch}: mse {loss.item():.4f}")
