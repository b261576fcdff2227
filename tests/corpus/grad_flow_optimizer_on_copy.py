# expect: grad-flow
# The optimizer is built over a deep copy of the model (kept for "best model" tracking) instead of the model that is trained.
import copy

import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(512, 12)
y = (X[:, :3].sum(1) > 0).long()

model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 2))
best_model = copy.deepcopy(model)
optimizer = torch.optim.Adam(best_model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()
best = float("inf")
for epoch in range(4):
    for i in range(0, 512, 32):
        optimizer.zero_grad()
        loss = criterion(model(X[i:i + 32]), y[i:i + 32])
        loss.backward()
        optimizer.step()
    if loss.item() < best:
        best = loss.item()
    print(f"epoch {epoch} loss {loss.item():.4f}")
