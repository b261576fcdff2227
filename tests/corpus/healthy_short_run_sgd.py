# expect: healthy
# A very short run: 12 full-batch SGD steps on iris-like blobs (a quick smoke test a user runs before the real training).
import torch
import torch.nn as nn

torch.manual_seed(0)
x = torch.cat([torch.randn(50, 4) + m for m in (0.0, 2.5, 5.0)])
y = torch.arange(3).repeat_interleave(50)
x = (x - x.mean(0)) / x.std(0)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for step in range(12):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print("loss", loss.item(), "acc", (model(x).argmax(1) == y).float().mean().item())
