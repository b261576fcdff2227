# expect: shape
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def make_sequences(n, length, rng):
    x = rng.normal(0, 1, size=(n, length, 1)).astype(np.float32)
    bump = rng.integers(0, 2, size=n)
    pos = rng.integers(2, length - 2, size=n)
    x[np.arange(n), pos, 0] += np.where(bump == 1, 3.0, -3.0)
    return torch.from_numpy(x), torch.from_numpy(bump)


class SeqClassifier(nn.Module):
    def __init__(self, hidden=24, layers=2):
        super().__init__()
        self.gru = nn.GRU(1, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden * layers, 2)

    def forward(self, x):
        _, h = self.gru(x)
        feats = h.view(x.size(0), -1)
        return self.head(feats)


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    Xtr, ytr = make_sequences(1600, 16, rng)
    Xte, yte = make_sequences(400, 16, rng)
    loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=32, shuffle=True)
    model = SeqClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(6):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
