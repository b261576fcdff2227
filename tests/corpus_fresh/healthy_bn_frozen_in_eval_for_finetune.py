# expect: healthy
# half: holdout
# source: lookalike of train-mode faults; common fine-tuning practice "freeze BatchNorm statistics" (model.train() then every BatchNorm put back in eval mode)
# fault: none. The backbone's BatchNorm layers are switched to eval on purpose after model.train() in each fine-tuning epoch: their running statistics from pre-training are kept.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
                                      nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU())
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.backbone(x))


def freeze_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.eval()


def run_epoch(model, opt, X, y, idx, frozen_bn):
    model.train()
    if frozen_bn:
        freeze_bn(model)
    order = idx[torch.randperm(len(idx))]
    for i in range(0, len(order), 50):
        b = order[i:i + 50]
        opt.zero_grad()
        F.cross_entropy(model(X[b]), y[b]).backward()
        opt.step()


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    pre, ft, te = perm[:900], perm[900:1400], perm[1400:]
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(4):
        run_epoch(model, opt, X, y, pre, frozen_bn=False)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    for epoch in range(3):
        run_epoch(model, opt, X, y, ft, frozen_bn=True)
    model.eval()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
