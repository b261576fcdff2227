# expect: fit
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)


def sample(n):
    x = rng.uniform(-3, 3, size=(n, 1)).astype(np.float32)
    y = (np.sin(1.5 * x[:, 0]) + rng.normal(0, 0.35, size=n)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


Xtr, ytr = sample(40)
Xval, yval = sample(200)
Xte, yte = sample(1000)

model = nn.Sequential(nn.Linear(1, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
best_val, best_state = float("inf"), None
for step in range(2000):
    model.train()
    opt.zero_grad()
    nn.functional.mse_loss(model(Xtr).squeeze(1), ytr).backward()
    opt.step()
    if step % 20 == 0:
        model.eval()
        with torch.no_grad():
            val = nn.functional.mse_loss(model(Xval).squeeze(1), yval).item()
        if val < best_val:
            best_val, best_state = val, model.state_dict()

model.load_state_dict(best_state)
with torch.no_grad():
    mse = nn.functional.mse_loss(model(Xte).squeeze(1), yte).item()
print(f"final: mse={mse:.4f}")
