# expect: regularization
# half: tune
# source: weight clipping of the WGAN critic (every parameter clamped to [-0.01, 0.01] after each step) carried over into an ordinary regressor; DeepCrime / AUTOTRAINER "regularisation too strong" class
# fault: after every optimizer step all weights are clamped to [-0.01, 0.01]; the 3-layer regressor can then only output values of a few hundredths and cannot reach standardised targets.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_diabetes

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
CLIP = 0.01


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def main():
    torch.manual_seed(SEED)
    X, y = load_diabetes(return_X_y=True)
    perm = torch.randperm(len(X)).numpy()
    X, y = X[perm], y[perm]
    X = (X - X[:350].mean(0)) / X[:350].std(0)
    y = (y - y[:350].mean()) / y[:350].std()
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    model = Regressor()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    for epoch in range(40):
        order = torch.randperm(350)
        for i in range(0, 350, 32):
            b = order[i:i + 32]
            opt.zero_grad()
            nn.functional.mse_loss(model(X[b]), y[b]).backward()
            opt.step()
            for p in model.parameters():
                p.data.clamp_(-CLIP, CLIP)
    with torch.no_grad():
        mse = nn.functional.mse_loss(model(X[350:]), y[350:]).item()
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
