# expect: data
# half: holdout
# source: PyTorch forums / Stack Overflow "WeightedRandomSampler only returns a few samples" (weights given per class, the sampler wants one weight per sample; codetd.com/article/12726075)
# fault: WeightedRandomSampler gets the 3 per-class weights, so it only ever draws indices 0, 1 and 2: every batch repeats the first three training rows.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = make_classification(n_samples=1500, n_features=12, n_informative=6, n_classes=3,
                           n_clusters_per_class=1, weights=[0.8, 0.15, 0.05], class_sep=1.5,
                           random_state=SEED)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
Xtr, ytr, Xte, yte = X[:1100], y[:1100], X[1100:], y[1100:]

counts = torch.bincount(ytr, minlength=3).float()
class_weights = 1.0 / counts
sampler = WeightedRandomSampler(class_weights, num_samples=len(ytr), replacement=True)
loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=64, sampler=sampler)

model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(6):
    for xb, yb in loader:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()

with torch.no_grad():
    pred = model(Xte).argmax(1)
recalls = [(pred[yte == c] == c).float().mean().item() for c in range(3) if (yte == c).any()]
print(f"final: bacc={sum(recalls) / len(recalls):.4f}")
