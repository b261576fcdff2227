# expect: optimizer
# SGD(nesterov=True) without a momentum value: torch raises ValueError before training starts.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(256, 8)
y = X.sum(dim=1, keepdim=True)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01, nesterov=True)
for _step in range(50):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
print(loss.item())
