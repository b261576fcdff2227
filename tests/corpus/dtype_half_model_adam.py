# expect: dtype
# "Mixed precision" done as model.half() plus plain Adam on float16 weights, with no float32 master copy.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(1024, 16)
y = (X[:, 0] - X[:, 1] > 0).long()
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 2)).half()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    for i in range(0, 1024, 64):
        xb, yb = X[i:i + 64].half(), y[i:i + 64]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb).float(), yb)
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
