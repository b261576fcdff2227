# expect: dtype
# half: holdout
# source: PyTorch forum / Stack Overflow "subtracting from a uint8 tensor wraps around" (image centring done before the float cast)
# fault: images arrive as uint8 and are centred with `x - 128` while still uint8: values below 128 wrap to 129..255, scrambling the pixels.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class Digits(Dataset):
    def __init__(self, images, labels):
        self.images = torch.from_numpy(images)            # uint8, 0..255
        self.labels = torch.from_numpy(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = self.images[i]
        img = (img - 128).float() / 128.0
        return img.unsqueeze(0), self.labels[i]


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    imgs = (X.reshape(-1, 8, 8) * 255.0 / 16.0).astype(np.uint8)
    rng = np.random.default_rng(SEED)
    idx = rng.permutation(len(y))
    train = DataLoader(Digits(imgs[idx[:1300]], y[idx[:1300]]), batch_size=64, shuffle=True)
    test = DataLoader(Digits(imgs[idx[1300:]], y[idx[1300:]]), batch_size=256)
    net = nn.Sequential(nn.Conv2d(1, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(12 * 16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for epoch in range(4):
        for xb, yb in train:
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    correct = 0
    with torch.no_grad():
        for xb, yb in test:
            correct += (net(xb).argmax(1) == yb).sum().item()
    print(f"final: acc={correct / len(test.dataset):.4f}")


if __name__ == "__main__":
    main()
