# expect: healthy
# half: holdout
# source: lookalike of labels_ignore_index_real_class; semi-supervised training where unlabelled rows carry the label -1 and CrossEntropyLoss(ignore_index=-1) skips them
# fault: none. 70% of the training rows are unlabelled on purpose (label -1, not a class); ignore_index=-1 removes exactly those rows and every real class is learned.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]
y_train = y[:1400].clone()
y_train[torch.rand(1400) < 0.7] = -1                 # unlabelled rows

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
criterion = nn.CrossEntropyLoss(ignore_index=-1)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(20):
    order = torch.randperm(1400)
    for i in range(0, 1400, 64):
        b = order[i:i + 64]
        if (y_train[b] == -1).all():
            continue
        opt.zero_grad()
        criterion(model(X[b]), y_train[b]).backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[1400:]).argmax(1) == y[1400:]).float().mean().item()
print(f"final: acc={acc:.4f}")
