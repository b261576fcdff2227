# expect: healthy
# half: holdout
# source: lookalike of activation_leakyrelu_inplace_flag_as_slope; DCGAN-style nn.LeakyReLU(0.2, True) with both arguments positional
# fault: none. nn.LeakyReLU(0.2, True) is slope 0.2 and inplace=True, exactly as intended; the network is non-linear and separates the circles.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_circles

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, 64), nn.LeakyReLU(0.2, True),
            nn.Linear(64, 64), nn.LeakyReLU(0.2, True),
            nn.Linear(64, 2),
        )

    def forward(self, x):
        return self.net(x)


def main():
    torch.manual_seed(SEED)
    X, y = make_circles(n_samples=800, factor=0.5, noise=0.08, random_state=SEED)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y)
    model = Classifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(25):
        order = torch.randperm(600)
        for i in range(0, 600, 50):
            b = order[i:i + 50]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[600:]).argmax(1) == y[600:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
