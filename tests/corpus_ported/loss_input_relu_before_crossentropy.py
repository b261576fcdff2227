# expect: loss-input
# half: tune
# source: NeuraLint / DeepFD "last layer activation" fault (a ReLU left on the output layer of a classifier)
# fault: the classifier's logits pass through ReLU, so negative evidence is clipped to 0 and classes whose logit dies stop getting gradient.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = make_classification(n_samples=1000, n_features=20, n_informative=10, n_classes=5,
                           n_clusters_per_class=1, random_state=SEED)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
train = DataLoader(TensorDataset(X[:800], y[:800]), batch_size=32, shuffle=True)

layers = [nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5)]
layers.append(nn.ReLU())
model = nn.Sequential(*layers)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(6):
    for xb, yb in train:
        optimizer.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimizer.step()

model.eval()
with torch.no_grad():
    acc = (model(X[800:]).argmax(1) == y[800:]).float().mean().item()
print(f"final: acc={acc:.4f}")
