# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(32, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
y = torch.tensor(y)
perm = torch.randperm(len(X))
Xtr, ytr, Xte, yte = X[perm[:1300]], y[perm[:1300]], X[perm[1300:]], y[perm[1300:]]

beta = torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4))
model = ConvNet()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(12):
    model.train()
    for b in torch.randperm(len(Xtr)).split(32):
        xb, yb = Xtr[b], F.one_hot(ytr[b], 10).float()
        lam = beta.sample()
        shuffled = torch.randperm(len(b))
        xb = lam * xb + (1 - lam) * xb[shuffled]
        yb = lam * yb + (1 - lam) * yb[shuffled]
        loss = torch.sum(-yb * F.log_softmax(model(xb), dim=1), dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

model.eval()
with torch.no_grad():
    acc = (model(Xte).argmax(1) == yte).float().mean().item()
print(f"final: acc={acc:.4f}")
