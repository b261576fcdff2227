# expect: healthy
# Linear LR warm-up with LambdaLR (then cosine decay) for an AdamW MLP on digits, scheduler stepped every batch.
import math

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.from_numpy(X).float() / 16.0 - 0.5
y = torch.from_numpy(y).long()
loader = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=50, shuffle=True)

model = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 10))
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
epochs = 5
total_steps = epochs * len(loader)
warmup = 30


def lr_lambda(step):
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(epochs):
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    print(f"epoch {epoch} loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.5f}")

with torch.no_grad():
    acc = (model(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
print(f"final loss {loss.item():.4f} held-out accuracy {acc:.3f}")
