# expect: healthy
# half: tune
# source: lookalike of loss-input / numerics faults; logit clamping as a stabiliser (e.g. CLIP's clamped logit scale, "clamp logits to avoid overflow" in forum answers)
# fault: none. The classifier clamps its logits to [-10, 10] before cross_entropy; the bound is far from the working range and the model trains normally.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class ClampedClassifier(nn.Module):
    def __init__(self, bound=10.0):
        super().__init__()
        self.bound = bound
        self.body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.body(x).clamp(-self.bound, self.bound)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = ClampedClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(5):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 50):
            b = order[i:i + 50]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
