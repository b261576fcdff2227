# expect: healthy
# An autoencoder on digits scaled to [0,1]: the decoder ends in nn.Sigmoid and is trained with nn.BCELoss.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits


class AutoEncoder(nn.Module):
    def __init__(self, d=64, code=12):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d, 48), nn.ReLU(), nn.Linear(48, code))
        self.decoder = nn.Sequential(nn.Linear(code, 48), nn.ReLU(), nn.Linear(48, d), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


torch.manual_seed(0)
data = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0   # pixels in [0, 1]
train, test = data[:1500], data[1500:]

model = AutoEncoder()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.BCELoss()

for epoch in range(5):
    perm = torch.randperm(len(train))
    for i in range(0, len(train), 64):
        batch = train[perm[i:i + 64]]
        recon = model(batch)
        loss = criterion(recon, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test_loss = criterion(model(test), test).item()
    print(f"epoch {epoch} train bce {loss.item():.4f} test bce {test_loss:.4f}")

print(f"final loss {loss.item():.4f} test bce {test_loss:.4f}")
