# expect: train-mode
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def evaluate(model, loader):
    model.training = False
    correct = total = 0
    with torch.no_grad():
        for xb, yb in loader:
            correct += (model(xb).argmax(1) == yb).sum().item()
            total += len(yb)
    return correct / total


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=SEED)
    as_ds = lambda a, b: TensorDataset(torch.tensor(a, dtype=torch.float32), torch.tensor(b))  # noqa: E731
    train_loader = DataLoader(as_ds(Xtr, ytr), batch_size=32, shuffle=True)
    test_loader = DataLoader(as_ds(Xte, yte), batch_size=32)
    model = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.6),
        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.6),
        nn.Linear(256, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(12):
        model.train()
        for xb, yb in train_loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        acc = evaluate(model, test_loader)
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
