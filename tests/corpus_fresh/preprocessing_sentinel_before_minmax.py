# expect: preprocessing
# half: holdout
# source: Stack Overflow / Kaggle "missing values coded as 99999 / -999" fed to MinMaxScaler (NeuraLint / DeepFD data-preparation faults)
# fault: missing readings are stored as 99999 and the table is min-max scaled as is; the real values of every affected column are squashed into [0, 1e-4].
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from sklearn.preprocessing import MinMaxScaler

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
MISSING = 99999.0


def load_table(rng):
    X, y = make_classification(n_samples=1200, n_features=10, n_informative=6, n_redundant=0,
                               class_sep=1.2, random_state=SEED)
    holes = rng.random(X.shape) < 0.01
    X[holes] = MISSING
    return X, y


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    X, y = load_table(rng)
    X = MinMaxScaler().fit(X[:900]).transform(X)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(10):
        perm = torch.randperm(900)
        for i in range(0, 900, 50):
            b = perm[i:i + 50]
            opt.zero_grad()
            loss_fn(model(X[b]).squeeze(1), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = ((model(X[900:]).squeeze(1) > 0).float() == y[900:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
