# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../optimizer_b20.py
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class AutoEncoder(nn.Module):
    def __init__(self, d=64, code=12):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d, 48), nn.ReLU(), nn.Linear(48, code))
        self.decoder = nn.Sequential(nn.Linear(code, 48), nn.ReLU(), nn.Linear(48, d), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def main():
    torch.manual_seed(SEED)
    X, _ = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    X = X[torch.randperm(len(X))]
    train, test = X[:1500], X[1500:]
    loader = DataLoader(TensorDataset(train), batch_size=50, shuffle=True)
    model = AutoEncoder()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
    for epoch in range(20):
        for (xb,) in loader:
            recon = model(xb)
            loss = nn.functional.mse_loss(recon, xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = nn.functional.mse_loss(model(test), test).item()
    print(f"final: mse={mse:.5f}")


if __name__ == "__main__":
    main()
