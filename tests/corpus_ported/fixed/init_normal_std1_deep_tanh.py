# expect: healthy
# half: holdout
# fixed twin of ../init_normal_std1_deep_tanh.py: Xavier-normal weights scaled by fan-in.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class TanhNet(nn.Module):
    def __init__(self, width=128, depth=4):
        super().__init__()
        self.inp = nn.Linear(20, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out = nn.Linear(width, 2)
        for lin in [self.inp, *self.blocks]:
            nn.init.xavier_normal_(lin.weight, gain=nn.init.calculate_gain("tanh"))

    def forward(self, x):
        x = torch.tanh(self.inp(x))
        for blk in self.blocks:
            x = torch.tanh(blk(x))
        return self.out(x)


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=1000, n_features=20, n_informative=8, random_state=SEED)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    net = TanhNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(6):
        perm = torch.randperm(800)
        for i in range(0, 800, 40):
            b = perm[i:i + 40]
            opt.zero_grad()
            F.cross_entropy(net(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (net(X[800:]).argmax(1) == y[800:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
