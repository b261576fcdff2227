# expect: healthy
# half: tune
# fixed twin of ../grad_flow_layers_in_python_list.py: the hidden layers are held in nn.ModuleList.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class DeepMLP(nn.Module):
    def __init__(self, sizes=(64, 24, 12, 12), n_out=10):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = nn.Linear(sizes[-1], n_out)

    def forward(self, x):
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    X, y = X[perm], y[perm]
    model = DeepMLP()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(8):
        for i in range(0, 1400, 50):
            opt.zero_grad()
            F.cross_entropy(model(X[i:i + 50]), y[i:i + 50]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[1400:]).argmax(1) == y[1400:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
