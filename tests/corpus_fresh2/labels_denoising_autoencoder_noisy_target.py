# expect: labels
# half: holdout
# source: forum questions "my denoising autoencoder just copies the noise" (the reconstruction target is the corrupted input instead of the clean one)
# fault: the denoising autoencoder is trained to reconstruct its NOISY input; the wide network learns (nearly) the identity, keeps the noise, and the error against the clean digits stays close to the noise level.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
NOISE = 0.3


class DenoisingAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU())
        self.decoder = nn.Linear(128, 64)

    def forward(self, x):
        return self.decoder(self.encoder(x))


torch.manual_seed(SEED)
X, _ = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
X = X[torch.randperm(len(X))]
Xtr, Xte = X[:1400], X[1400:]
model = DenoisingAE()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(25):
    order = torch.randperm(1400)
    for i in range(0, 1400, 64):
        clean = Xtr[order[i:i + 64]]
        noisy = clean + NOISE * torch.randn_like(clean)
        opt.zero_grad()
        nn.functional.mse_loss(model(noisy), noisy).backward()
        opt.step()

with torch.no_grad():
    mse = nn.functional.mse_loss(model(Xte + NOISE * torch.randn_like(Xte)), Xte).item()
print(f"final: mse={mse:.4f}")
