# expect: healthy
# SimCLR-style contrastive learning on blobs: two noisy views of each row, normalised projections, NT-Xent (cross entropy over a similarity matrix with temperature 0.1); then a linear probe.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
centers = torch.randn(6, 20) * 2
y = torch.randint(0, 6, (1024,))
x = centers[y] + torch.randn(1024, 20)
x = (x - x.mean(0)) / x.std(0)

encoder = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
projector = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32))
params = list(encoder.parameters()) + list(projector.parameters())
opt = torch.optim.Adam(params, lr=1e-3)
temperature = 0.1


def augment(batch):
    return batch + 0.3 * torch.randn_like(batch)


def nt_xent(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / t
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets)


for epoch in range(4):
    perm = torch.randperm(len(x))
    for i in range(0, len(x), 128):
        xb = x[perm[i:i + 128]]
        loss = nt_xent(projector(encoder(augment(xb))), projector(encoder(augment(xb))), temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} nt-xent {loss.item():.3f}")

with torch.no_grad():
    feats = encoder(x)
probe = nn.Linear(64, 6)
popt = torch.optim.Adam(probe.parameters(), lr=1e-2)
for _ in range(100):
    ploss = F.cross_entropy(probe(feats), y)
    popt.zero_grad()
    ploss.backward()
    popt.step()
print("probe accuracy", (probe(feats).argmax(1) == y).float().mean().item())
