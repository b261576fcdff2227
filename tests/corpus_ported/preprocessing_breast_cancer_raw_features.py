# expect: preprocessing
# half: tune
# source: TheDeepChecker / DeepFD fault "unnormalised inputs" (features on scales from 1e-3 to 4e3 fed straight to an MLP)
# fault: the breast-cancer features are used raw; SGD on inputs up to ~4000 saturates and the loss barely moves.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_breast_cancer(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=SEED, stratify=y)
X_tr = torch.tensor(X_tr, dtype=torch.float32)
X_te = torch.tensor(X_te, dtype=torch.float32)
y_tr = torch.tensor(y_tr, dtype=torch.float32)
y_te = torch.tensor(y_te, dtype=torch.float32)

net = nn.Sequential(nn.Linear(30, 32), nn.Tanh(), nn.Linear(32, 1))
loss_fn = nn.BCEWithLogitsLoss()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
for epoch in range(25):
    perm = torch.randperm(len(X_tr))
    for i in range(0, len(X_tr), 40):
        b = perm[i:i + 40]
        opt.zero_grad()
        loss = loss_fn(net(X_tr[b]).squeeze(1), y_tr[b])
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = ((net(X_te).squeeze(1) > 0).float() == y_te).float().mean().item()
print(f"final: acc={acc:.4f}")
