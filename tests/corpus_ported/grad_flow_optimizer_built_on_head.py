# expect: grad-flow
# half: tune
# source: PyTorch forum "only the classifier is being trained" (optimizer built over model.classifier.parameters(), copied from a fine-tuning tutorial, on a model trained from scratch)
# fault: the optimizer only holds the head's parameters; the randomly initialised encoder is never updated.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(30, 6), nn.ReLU())
        self.classifier = nn.Linear(6, 3)

    def forward(self, x):
        return self.classifier(self.encoder(x))


X, y = make_classification(n_samples=1000, n_features=30, n_informative=12, n_classes=3,
                           n_clusters_per_class=2, random_state=SEED)
X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
loader = DataLoader(TensorDataset(X[:800], y[:800]), batch_size=40, shuffle=True)

model = Model()
optimizer = torch.optim.AdamW(model.classifier.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
for epoch in range(8):
    for xb, yb in loader:
        optimizer.zero_grad()
        criterion(model(xb), yb).backward()
        optimizer.step()

with torch.no_grad():
    acc = (model(X[800:]).argmax(1) == y[800:]).float().mean().item()
print(f"final: acc={acc:.4f}")
