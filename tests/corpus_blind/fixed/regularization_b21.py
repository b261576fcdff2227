# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
# fixed twin of ../regularization_b21.py
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class EarlyStopping:
    def __init__(self, patience, min_delta):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.bad_epochs = float("inf"), 0

    def step(self, val_loss):
        if val_loss < self.best - self.min_delta:
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs > self.patience


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=4000, n_features=20, n_informative=12, n_classes=4,
                               n_clusters_per_class=2, class_sep=1.2, random_state=SEED)
    X = X.astype(np.float32)
    Xtr, Xtmp, ytr, ytmp = train_test_split(X, y, test_size=0.4, random_state=SEED)
    Xval, Xte, yval, yte = train_test_split(Xtmp, ytmp, test_size=0.5, random_state=SEED)
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    loader = DataLoader(TensorDataset(t(Xtr), t(ytr)), batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4))
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    stopper = EarlyStopping(patience=5, min_delta=0.0)
    for epoch in range(60):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = nn.functional.cross_entropy(model(t(Xval)), t(yval)).item()
        if stopper.step(val_loss):
            break
    with torch.no_grad():
        acc = (model(t(Xte)).argmax(1) == t(yte)).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
