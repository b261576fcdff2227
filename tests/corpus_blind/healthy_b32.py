# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import copy
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class NoisyMLP(nn.Module):
    """Adds Gaussian noise to its inputs while training, as a regulariser."""

    def __init__(self, d_in, noise=0.1):
        super().__init__()
        self.noise = noise
        self.net = nn.Sequential(nn.Linear(d_in, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        if self.training:
            x = x + self.noise * torch.randn_like(x)
        return self.net(x).squeeze(1)


def main():
    torch.manual_seed(SEED)
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xrest, ytr, yrest = train_test_split(X, y, test_size=0.4, random_state=SEED, stratify=y)
    Xval, Xte, yval, yte = train_test_split(Xrest, yrest, test_size=0.5, random_state=SEED, stratify=yrest)
    sc = StandardScaler().fit(Xtr)
    f = lambda a: torch.tensor(sc.transform(a), dtype=torch.float32)  # noqa: E731
    Xtr, Xval, Xte = f(Xtr), f(Xval), f(Xte)
    ytr, yval, yte = (torch.tensor(a, dtype=torch.float32) for a in (ytr, yval, yte))
    model = NoisyMLP(30)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    best, best_state, patience, waited = np.inf, None, 8, 0
    for epoch in range(200):
        model.train()
        for b in torch.randperm(len(Xtr)).split(32):
            opt.zero_grad()
            nn.functional.binary_cross_entropy_with_logits(model(Xtr[b]), ytr[b]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = nn.functional.binary_cross_entropy_with_logits(model(Xval), yval).item()
        if val < best - 1e-4:
            best, best_state, waited = val, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        acc = ((model(Xte) > 0).float() == yte).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
