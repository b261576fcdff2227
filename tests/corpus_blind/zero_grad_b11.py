# expect: zero-grad
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = load_breast_cancer(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=SEED, stratify=y)
scaler = StandardScaler().fit(Xtr)
Xtr = torch.tensor(scaler.transform(Xtr), dtype=torch.float32)
Xte = torch.tensor(scaler.transform(Xte), dtype=torch.float32)
ytr = torch.tensor(ytr, dtype=torch.float32)
yte = torch.tensor(yte, dtype=torch.float32)

model = nn.Sequential(nn.Linear(30, 16), nn.Tanh(), nn.Linear(16, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20, history_size=10)


def closure():
    loss = criterion(model(Xtr).squeeze(1), ytr) + 1e-3 * sum((p ** 2).sum() for p in model.parameters())
    loss.backward()
    return loss


for it in range(15):
    optimizer.step(closure)

with torch.no_grad():
    bce = nn.functional.binary_cross_entropy_with_logits(model(Xte).squeeze(1), yte).item()
print(f"final: loss={bce:.4f}")
