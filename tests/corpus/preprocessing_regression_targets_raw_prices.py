# expect: preprocessing
# House prices (~2e5) regressed on standardised features with MSE and Adam: the targets are never standardised,
# so the output layer, starting near 0, cannot reach their scale and the loss stays at the mean's level.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(640, 8)
price = 2.0e5 + 5.0e4 * (X @ torch.randn(8, 1)) / 3 + 1.0e4 * torch.randn(640, 1)

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(6):
    for i in range(0, 640, 32):
        loss = F.mse_loss(model(X[i:i + 32]), price[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
print(f"final: mse={loss.item():.4g}")
