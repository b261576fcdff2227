# expect: healthy
# half: tune
# fixed twin of ../dtype_regression_targets_int64.py: float targets (dtype=torch.float32).
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        return self.out(self.body(x)).squeeze(1)


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    X = rng.uniform(-1, 1, size=(1200, 4)).astype(np.float32)
    y = 2.0 + 1.5 * np.sin(2 * X[:, 0]) + 0.4 * X[:, 1] * X[:, 2]
    Xt = torch.from_numpy(X)
    yt = torch.tensor(y, dtype=torch.float32)
    y_true = torch.tensor(y, dtype=torch.float32)
    loader = DataLoader(TensorDataset(Xt[:1000], yt[:1000]), batch_size=50, shuffle=True)
    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(15):
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(xb), yb.float())
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = nn.functional.mse_loss(model(Xt[1000:]), y_true[1000:]).item()
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
