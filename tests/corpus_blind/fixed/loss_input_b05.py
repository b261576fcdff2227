# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../loss_input_b05.py
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class RateModel(nn.Module):
    """Predicts the expected number of events per hour (a positive rate)."""

    def __init__(self, d_in):
        super().__init__()
        self.fc1 = nn.Linear(d_in, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        return F.softplus(self.fc2(torch.tanh(self.fc1(x)))).squeeze(-1)


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    X = rng.normal(0, 1, size=(3000, 5)).astype(np.float32)
    rate = np.exp(0.8 * X[:, 0] - 0.6 * X[:, 1] + 0.3 * X[:, 2] - 0.5).astype(np.float32)
    counts = rng.poisson(rate).astype(np.float32)
    Xt, ct, rt = torch.from_numpy(X), torch.from_numpy(counts), torch.from_numpy(rate)
    loader = DataLoader(TensorDataset(Xt[:2500], ct[:2500]), batch_size=100, shuffle=True)
    model = RateModel(5)
    criterion = nn.PoissonNLLLoss(log_input=False)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(15):
        for xb, cb in loader:
            opt.zero_grad()
            loss = criterion(model(xb), cb)
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = F.mse_loss(model(Xt[2500:]), rt[2500:]).item()
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
