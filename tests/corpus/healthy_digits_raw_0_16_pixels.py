# expect: healthy
# sklearn digits fed as raw 0..16 pixel intensities (never scaled) into an MLP trained with SGD.
# Once labelled a preprocessing fault; measured (2026-12-08), it is not one: after these 4 epochs raw inputs
# reach test accuracy 0.906 / 0.899 / 0.862 (seeds 0-2) against 0.771 / 0.751 / 0.795 with x / 16, and raw
# 0..16 inputs beat x / 16 and standardisation under Adam, Adamax and SGD(0.01, momentum 0.9) at 50, 100 and
# 400 steps (3 seeds each). nndoctor says preprocessing.unnormalised-pixels as info only at this scale.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32)      # values 0..16, not normalised
y = torch.tensor(digits.target, dtype=torch.long)
X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
criterion = nn.CrossEntropyLoss()

for epoch in range(4):
    perm = torch.randperm(len(X_train))
    for i in range(0, len(X_train), 64):
        idx = perm[i:i + 64]
        optimizer.zero_grad()
        loss = criterion(model(X_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.3f} test acc {acc:.3f}")
