# expect: data
# half: holdout
# source: Stack Overflow "high training accuracy but test accuracy at chance" (the scaler applied to the training split only; the test inputs come from a shifted distribution)
# fault: the training features are standardised but the evaluation features are fed raw, so the model sees inputs from a different distribution at test time.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_wine(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=SEED, stratify=y)
scaler = StandardScaler().fit(X_tr)
X_tr = scaler.transform(X_tr)

X_tr, X_te = torch.tensor(X_tr, dtype=torch.float32), torch.tensor(X_te, dtype=torch.float32)
y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)
model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(30):
    perm = torch.randperm(len(X_tr))
    for i in range(0, len(X_tr), 25):
        b = perm[i:i + 25]
        opt.zero_grad()
        nn.functional.cross_entropy(model(X_tr[b]), y_tr[b]).backward()
        opt.step()

model.eval()
with torch.no_grad():
    acc = (model(X_te).argmax(1) == y_te).float().mean().item()
print(f"final: acc={acc:.4f}")
