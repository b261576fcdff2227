# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../preprocessing_b03.py
import os

import numpy as np
import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
REGIONS = ["alpine", "coast", "delta", "forest", "north", "plains", "south", "valley"]
EFFECT = {"alpine": -2.0, "coast": 1.5, "delta": -1.0, "forest": 2.0, "north": -1.5, "plains": 0.5,
          "south": 1.0, "valley": -0.5}


def make_table(n, regions, rng):
    region = rng.choice(regions, size=n)
    num = rng.normal(0, 1, size=(n, 3))
    score = num[:, 0] - 0.5 * num[:, 1] + np.array([EFFECT[r] for r in region])
    label = (score + rng.normal(0, 0.3, size=n) > 0).astype(np.int64)
    return num.astype(np.float32), region, label


def one_hot(values, levels):
    out = np.zeros((len(values), len(REGIONS)), dtype=np.float32)
    out[np.arange(len(values)), [levels.index(v) for v in values]] = 1.0
    return out


rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)
num_tr, reg_tr, y_tr = make_table(2000, REGIONS, rng)
num_te, reg_te, y_te = make_table(600, [r for r in REGIONS if r != "coast"], rng)

X_tr = np.hstack([num_tr, one_hot(reg_tr, sorted(set(reg_tr)))])
X_te = np.hstack([num_te, one_hot(reg_te, sorted(set(reg_tr)))])
X_tr, X_te = torch.from_numpy(X_tr), torch.from_numpy(X_te)
y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)

model = nn.Sequential(nn.Linear(X_tr.shape[1], 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(150):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(X_tr), y_tr)
    loss.backward()
    opt.step()

with torch.no_grad():
    acc = (model(X_te).argmax(1) == y_te).float().mean().item()
print(f"final: acc={acc:.4f}")
