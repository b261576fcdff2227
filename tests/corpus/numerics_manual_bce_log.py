# expect: numerics
# Hand-written binary cross-entropy on sigmoid outputs: once the sigmoid saturates to exactly 0 or 1, torch.log(0) = -inf.
# args: --max-steps 40
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(1024, 12) * 3.0
w_true = torch.randn(12)
y = (X @ w_true > 0).float().unsqueeze(1)

model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

for epoch in range(10):
    for i in range(0, len(X), 64):
        xb, yb = X[i:i + 64], y[i:i + 64]
        p = model(xb)
        loss = -(yb * torch.log(p) + (1 - yb) * torch.log(1 - p)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
