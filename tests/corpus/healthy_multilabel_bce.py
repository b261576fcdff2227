# expect: healthy
# Multi-label tagging: 5 independent binary labels per example, (N, 5) logits vs (N, 5) float targets in BCEWithLogitsLoss.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
N, D, K = 1500, 20, 5
X = torch.randn(N, D)
W = torch.randn(D, K)
Y = ((X @ W) + 0.5 * torch.randn(N, K) > 0.8).float()       # some tags rarer than others

model = nn.Sequential(nn.Linear(D, 64), nn.ReLU(), nn.Linear(64, K))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)


def train_epoch():
    perm = torch.randperm(1200)
    for i in range(0, 1200, 40):
        idx = perm[i:i + 40]
        logits = model(X[idx])
        loss = F.binary_cross_entropy_with_logits(logits, Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


for epoch in range(6):
    train_loss = train_epoch()
    with torch.no_grad():
        pred = (model(X[1200:]) > 0).float()
        acc = (pred == Y[1200:]).float().mean().item()
    print(f"epoch {epoch} loss {train_loss:.4f} per-tag accuracy {acc:.3f}")

print(f"final loss {train_loss:.4f} per-tag accuracy {acc:.3f} (positive rate {Y.mean().item():.2f})")
