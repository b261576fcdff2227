# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../labels_b17.py
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
PAD_LABEL = 0


class Digits(Dataset):
    def __init__(self, X, y):
        self.X = torch.tensor(X / 16.0, dtype=torch.float32)
        self.y = torch.tensor(y, dtype=torch.long)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


def run():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=SEED, stratify=y)
    train_loader = DataLoader(Digits(Xtr, ytr), batch_size=32, shuffle=True)
    test_set = Digits(Xte, yte)
    model = MLP()
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(12):
        for xb, yb in train_loader:
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(test_set.X).argmax(1) == test_set.y).float().mean().item()
    return acc


if __name__ == "__main__":
    print(f"final: acc={run():.4f}")
