# expect: healthy
# half: holdout
# fixed twin of ../numerics_acos_of_exact_cosine.py: cosine clamped to [-1 + 1e-6, 1 - 1e-6] before acos.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_blobs

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def angle_loss(pred, target):
    cos = F.cosine_similarity(pred, target, dim=1).clamp(-1.0 + 1e-6, 1.0 - 1e-6)
    return torch.acos(cos).mean()


def main():
    torch.manual_seed(SEED)
    X, y = make_blobs(n_samples=900, centers=3, n_features=6, cluster_std=2.5, random_state=SEED)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y)
    target = F.one_hot(y, 3).float()
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3), nn.ReLU())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(10):
        perm = torch.randperm(700)
        for i in range(0, 700, 35):
            b = perm[i:i + 35]
            opt.zero_grad()
            angle_loss(model(X[b]), target[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[700:]).argmax(1) == y[700:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
