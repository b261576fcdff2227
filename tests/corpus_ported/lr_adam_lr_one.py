# expect: lr
# half: tune
# source: DeepFD fault "learning rate" / AUTOTRAINER "oscillating loss" (Adam with lr=1.0, an SGD-style value copied into Adam)
# fault: Adam(lr=1.0) moves every weight by ~1 per step; the loss jumps around and the network ends near chance.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]

net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(net.parameters(), lr=1.0)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(5):
    for i in range(0, 1400, 50):
        optimizer.zero_grad()
        loss = loss_fn(net(X[i:i + 50]), y[i:i + 50])
        loss.backward()
        optimizer.step()

with torch.no_grad():
    acc = (net(X[1400:]).argmax(1) == y[1400:]).float().mean().item()
print(f"final: acc={acc:.4f}")
