# expect: numerics
# Contrastive embedding loss with pairwise distances sqrt(sum(d**2)); the diagonal distance is exactly 0, so its gradient is NaN.
# args: --max-steps 30
import torch
import torch.nn as nn


class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 8))

    def forward(self, x):
        return self.net(x)


def pairwise_distances(e):
    diff = e.unsqueeze(1) - e.unsqueeze(0)
    return torch.sqrt((diff ** 2).sum(-1))


torch.manual_seed(0)
centers = torch.randn(4, 16) * 2
labels = torch.randint(0, 4, (800,))
data = centers[labels] + torch.randn(800, 16)

model = Embedder()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
margin = 1.0
for step in range(100):
    idx = torch.randint(0, 800, (48,))
    emb = model(data[idx])
    dist = pairwise_distances(emb)
    same = (labels[idx].unsqueeze(1) == labels[idx].unsqueeze(0)).float()
    loss = (same * dist.pow(2) + (1 - same) * torch.clamp(margin - dist, min=0).pow(2)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 20 == 0:
        print(step, loss.item())
