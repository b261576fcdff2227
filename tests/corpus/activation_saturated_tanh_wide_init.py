# expect: activation
# A tanh MLP whose weights are drawn with std=1 (not scaled by fan-in): most tanh units sit saturated at +-1 from the start.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(1024, 32)
y = torch.sin(X[:, :4].sum(dim=1, keepdim=True))

model = nn.Sequential(
    nn.Linear(32, 128), nn.Tanh(),
    nn.Linear(128, 128), nn.Tanh(),
    nn.Linear(128, 128), nn.Tanh(),
    nn.Linear(128, 128), nn.Tanh(),
    nn.Linear(128, 1),
)
with torch.no_grad():
    for p in model.parameters():
        if p.dim() == 2:
            p.normal_(0.0, 1.0)

opt = torch.optim.SGD(model.parameters(), lr=1e-3)
loss_fn = nn.MSELoss()
for epoch in range(1):
    for i in range(0, 1024, 64):
        pred = model(X[i:i + 64])
        loss = loss_fn(pred, y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print("epoch", epoch, "mse", loss.item())
