# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../data_b22.py
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class DigitsDataset(Dataset):
    def __init__(self, images, labels):
        self.images = images.astype(np.float32) / 16.0
        self.labels = labels.astype(np.int64)

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, idx):
        return torch.from_numpy(self.images[idx]), int(self.labels[idx])


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    X, y = load_digits(return_X_y=True)
    order = rng.permutation(len(X))
    X, y = X[order], y[order]
    train_set = DigitsDataset(X[:1400], y[:1400])
    test_x = torch.tensor(X[1400:] / 16.0, dtype=torch.float32)
    test_y = torch.tensor(y[1400:])
    loader = DataLoader(train_set, batch_size=32, shuffle=True)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(15):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(test_x).argmax(1) == test_y).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
