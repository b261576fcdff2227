# expect: healthy
# half: holdout
# source: lookalike of labels / loss-curve faults; label smoothing (Szegedy et al.), CrossEntropyLoss(label_smoothing=0.2): the loss plateaus well above 0 by design
# fault: none. With label smoothing 0.2 the training loss cannot go below ~0.9 on 10 classes; that floor is intended, accuracy is normal.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]
loader = DataLoader(TensorDataset(X[tr], y[tr]), batch_size=64, shuffle=True)

model = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Dropout(0.1), nn.Linear(96, 10))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2)
for epoch in range(8):
    model.train()
    for xb, yb in loader:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()

model.eval()
with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
