# expect: healthy
# An nn.Module MLP updated by a manual loop over model.parameters() (p.data.add_), no optimizer object.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(400, 10)
y = (X[:, 0] - X[:, 1] > 0).long()
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
for step in range(120):
    i = (step * 40) % 400
    model.zero_grad()
    loss = F.cross_entropy(model(X[i:i + 40]), y[i:i + 40])
    loss.backward()
    for p in model.parameters():
        p.data.add_(p.grad.data, alpha=-0.1)
    if step % 40 == 0:
        print(f"step {step} loss {loss.item():.4f}")
print(f"final loss {loss.item():.4f}")
