# expect: healthy
# half: holdout
# fixed twin of ../activation_relu_on_autoencoder_code.py: the code layer is linear (no ReLU).
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
        self.decoder = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 64))

    def forward(self, x):
        return self.decoder(self.encoder(x))


def main():
    torch.manual_seed(SEED)
    X, _ = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    X = X[torch.randperm(len(X))]
    loader = DataLoader(TensorDataset(X[:1400]), batch_size=64, shuffle=True)
    ae = AutoEncoder()
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    for epoch in range(10):
        for (xb,) in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(ae(xb), xb)
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = nn.functional.mse_loss(ae(X[1400:]), X[1400:]).item()
    print(f"final: mse={mse:.5f}")


if __name__ == "__main__":
    main()
