# expect: healthy
# half: holdout
# fixed twin of ../loss_input_softmax_layer_crossentropy.py: the final nn.Softmax is removed (CrossEntropyLoss takes logits).
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
y = torch.tensor(y)
g = torch.Generator().manual_seed(SEED)
perm = torch.randperm(len(X), generator=g)
tr, te = perm[:1300], perm[1300:]

model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(6):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 64):
        b = order[i:i + 64]
        optimizer.zero_grad()
        loss = criterion(model(X[b]), y[b])
        loss.backward()
        optimizer.step()

with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
