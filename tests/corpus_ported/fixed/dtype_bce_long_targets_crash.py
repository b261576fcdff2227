# expect: healthy
# half: tune
# fixed twin of ../dtype_bce_long_targets_crash.py: the labels are cast to float.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_breast_cancer(return_X_y=True)
X = (X - X.mean(0)) / X.std(0)
features = torch.tensor(X, dtype=torch.float32)
labels = torch.from_numpy(y).float().unsqueeze(1)
perm = torch.randperm(len(features))
tr, te = perm[:450], perm[450:]

clf = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.AdamW(clf.parameters(), lr=1e-2)
for epoch in range(10):
    for i in range(0, len(tr), 45):
        b = tr[i:i + 45]
        optimizer.zero_grad()
        loss = criterion(clf(features[b]), labels[b])
        loss.backward()
        optimizer.step()

with torch.no_grad():
    acc = ((clf(features[te]) > 0).long() == labels[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
