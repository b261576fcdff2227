# expect: preprocessing
# Pixels are scaled with integer division (x // 255) on 0..200 images, so every input becomes 0.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(0)
n = 1000
y = rng.integers(0, 2, n)
raw = rng.integers(0, 120, (n, 100)) + 80 * y[:, None]      # uint8-like pixel values 0..199
X = torch.tensor(raw // 255, dtype=torch.float32)          # meant raw / 255
y = torch.tensor(y)

model = nn.Sequential(nn.Linear(100, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for i in range(0, n, 50):
        opt.zero_grad()
        loss = F.cross_entropy(model(X[i:i + 50]), y[i:i + 50])
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
