# expect: labels
# One preprocessing helper scales everything by 1/255, the class ids too: (labels / 255).long() is 0 for every digit class.
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


def preprocess(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32) / 255.0


torch.manual_seed(0)
digits = load_digits()
images = (digits.images * 16).clip(0, 255)             # 0..255 like an 8-bit image
X = preprocess(images).unsqueeze(1)
Y = preprocess(digits.target).long()                    # meant: torch.tensor(digits.target)
loader = DataLoader(TensorDataset(X[:1500], Y[:1500]), batch_size=64, shuffle=True)

model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()
for epoch in range(3):
    for xb, yb in loader:
        loss = criterion(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.5f}")
