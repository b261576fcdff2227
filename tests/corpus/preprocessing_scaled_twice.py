# expect: preprocessing
# The Dataset divides images by 255 although the arrays were already scaled to [0, 1] when loaded.
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

rng = np.random.default_rng(0)
n = 1200
labels = rng.integers(0, 4, n)
images = rng.integers(0, 60, (n, 1, 16, 16)).astype(np.uint8)
for i, c in enumerate(labels):                      # a bright bar whose position encodes the class
    images[i, 0, 4 * c:4 * c + 4, :] = 250
images = images.astype(np.float32) / 255.0          # scaled once here ...


class BarDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = torch.from_numpy(self.x[i]) / 255.0   # ... and again here
        return img, int(self.y[i])


model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(8 * 8 * 8, 4),
)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
loader = DataLoader(BarDataset(images, labels), batch_size=64, shuffle=True)
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
