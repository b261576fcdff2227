# expect: healthy
# half: holdout
# fixed twin of ../preprocessing_regression_target_unscaled.py: the targets are standardised for training and un-scaled for evaluation.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_regression

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = make_regression(n_samples=500, n_features=6, noise=10.0, random_state=SEED)
X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
y = torch.tensor(3000.0 + 15.0 * y, dtype=torch.float32).unsqueeze(1)
y_mean, y_std = y[:400].mean(), y[:400].std()

model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
X_tr, y_tr, X_te, y_te = X[:400], y[:400], X[400:], y[400:]
for epoch in range(30):
    for i in range(0, 400, 50):
        pred = model(X_tr[i:i + 50])
        loss = nn.functional.mse_loss(pred, (y_tr[i:i + 50] - y_mean) / y_std)
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    pred = model(X_te) * y_std + y_mean
    rel_mse = (((pred - y_te) ** 2).mean() / y_te.var()).item()
print(f"final: mse={rel_mse:.4f}")
