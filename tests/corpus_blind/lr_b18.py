# expect: lr
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset, random_split

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def build_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
    )


def main():
    g = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    ds = TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8), torch.tensor(y))
    train_ds, test_ds = random_split(ds, [1400, len(ds) - 1400], generator=g)
    loader = DataLoader(train_ds, batch_size=64, shuffle=True, generator=g)
    model = build_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = StepLR(opt, step_size=1, gamma=0.1)
    for epoch in range(15):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        sched.step()
    xs, ys = next(iter(DataLoader(test_ds, batch_size=len(test_ds))))
    with torch.no_grad():
        acc = (model(xs).argmax(1) == ys).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
