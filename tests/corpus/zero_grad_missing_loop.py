# expect: zero-grad
# A top-level regression loop that never calls zero_grad(): every step adds the new gradient to all the old ones.
# args: --max-steps 60
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(1024, 8)
y = X @ torch.randn(8, 1) + 0.1 * torch.randn(1024, 1)

model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
loss_fn = nn.MSELoss()

for epoch in range(5):
    for i in range(0, len(X), 32):
        pred = model(X[i:i + 32])
        loss = loss_fn(pred, y[i:i + 32])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
