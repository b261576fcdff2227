# expect: grad-flow
# half: holdout
# source: PyTorch forums "Torch.round() gradient" (discuss.pytorch.org/t/28628: round has zero derivative almost everywhere, the layers before it do not learn)
# fault: the hidden code is binarised with torch.round(torch.sigmoid(h)); its gradient is zero, so the encoder never changes and the head learns from a fixed random binary hash.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class BinaryCodeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 12)
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        code = torch.round(torch.sigmoid(self.enc(x)))
        return self.head(code)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = BinaryCodeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(8):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 64):
            b = order[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
