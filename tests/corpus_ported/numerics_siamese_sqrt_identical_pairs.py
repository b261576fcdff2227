# expect: numerics
# half: holdout
# source: PyTorch forum "NaN gradient of torch.sqrt at zero in contrastive loss" (Euclidean distance of identical embeddings)
# fault: the contrastive loss takes sqrt of a squared distance that is exactly 0 for pairs of a sample with itself; d sqrt/dx at 0 is inf and the weights become NaN.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_iris

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_iris(return_X_y=True)
X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(150)
train_idx, test_idx = perm[:110], perm[110:]


class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 8))

    def forward(self, x):
        return self.net(x)


def distance(a, b):
    return torch.sqrt(((a - b) ** 2).sum(1))


def sample_pairs(idx, n):
    i = idx[torch.randint(len(idx), (n,))]
    j = idx[torch.randint(len(idx), (n,))]
    j[: n // 8] = i[: n // 8]                      # some anchor/positive pairs are the same sample
    return i, j


emb = Embedder()
opt = torch.optim.Adam(emb.parameters(), lr=5e-3)
margin = 2.0
for step in range(150):
    i, j = sample_pairs(train_idx, 64)
    same = (y[i] == y[j]).float()
    d = distance(emb(X[i]), emb(X[j]))
    loss = (same * d ** 2 + (1 - same) * torch.clamp(margin - d, min=0) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

with torch.no_grad():
    g = torch.Generator().manual_seed(1)
    i = test_idx[torch.randint(len(test_idx), (400,), generator=g)]
    j = test_idx[torch.randint(len(test_idx), (400,), generator=g)]
    pred_same = distance(emb(X[i]), emb(X[j])) < margin / 2
    acc = (pred_same == (y[i] == y[j])).float().mean().item()
print(f"final: acc={acc:.4f}")
