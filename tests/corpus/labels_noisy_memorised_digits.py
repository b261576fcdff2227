# expect: labels
# sklearn digits with 35% of the labels replaced by a random other class; a wide MLP memorises them and the validation loss rises.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
g = torch.Generator().manual_seed(1)
flip = torch.rand(len(y), generator=g) < 0.35
y_noisy = torch.where(flip, (y + torch.randint(1, 10, (len(y),), generator=g)) % 10, y)  # a labelling accident
X_train, y_train = X[:900], y_noisy[:900]

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(200):
    loss = F.cross_entropy(model(X_train), y_train)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 20 == 0:
        with torch.no_grad():
            val_loss = F.cross_entropy(model(X[900:]), y_noisy[900:])    # the held-out labels are just as noisy
with torch.no_grad():
    acc = (model(X[900:]).argmax(1) == y[900:]).float().mean().item()
print(f"train loss {loss.item():.4f} val loss {val_loss.item():.4f} clean test accuracy {acc:.3f}")
