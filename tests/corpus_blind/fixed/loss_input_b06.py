# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../loss_input_b06.py
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 128)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        h = F.relu(self.hidden(x))
        return F.log_softmax(self.out(h), dim=1)


torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]
Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]

model = DigitNet()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(15):
    for i in range(0, len(Xtr), 50):
        xb, yb = Xtr[i:i + 50], ytr[i:i + 50]
        loss = F.nll_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = (model(Xte).argmax(1) == yte).float().mean().item()
print(f"final: acc={acc:.4f}")
