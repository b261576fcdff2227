# expect: numerics
# Each batch is standardised with its own std; a one-hot column that is all 0 in some batches has std 0, so 0/0 = NaN reaches the model.
# args: --max-steps 40
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
n = 1600
numeric = torch.randn(n, 5)
region = torch.zeros(n, 3)
region[torch.arange(n), (torch.rand(n) * 2.02).long().clamp(max=2)] = 1.0  # region 2 is very rare
X = torch.cat([numeric, region], dim=1)
price = numeric @ torch.randn(5, 1) + region @ torch.tensor([[1.0], [2.0], [3.0]])

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

for epoch in range(3):
    for i in range(0, n, 40):
        xb = X[i:i + 40]
        xb = (xb - xb.mean(0)) / xb.std(0)  # per-batch standardisation
        loss = F.mse_loss(model(xb), price[i:i + 40])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: mse {loss.item():.3f}")
