# expect: healthy
# half: tune
# fixed twin of ../labels_split_index_on_inputs_only.py: the same index selects the labels.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
idx = rng.permutation(len(X))
n_train = 1400
train_idx, test_idx = idx[:n_train], idx[n_train:]
X_train, y_train = X[train_idx], y[train_idx]
X_test, y_test = X[test_idx], y[test_idx]

X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)
X_test, y_test = torch.from_numpy(X_test), torch.from_numpy(y_test)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(6):
    perm = torch.randperm(n_train)
    for i in range(0, n_train, 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(model(X_train[b]), y_train[b]).backward()
        opt.step()
with torch.no_grad():
    acc = (model(X_test).argmax(1) == y_test).float().mean().item()
print(f"final: acc={acc:.4f}")
