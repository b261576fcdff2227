# expect: healthy
# half: holdout
# fixed twin of ../labels_mapping_built_per_split.py: the test names are encoded with the training split's mapping.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_wine

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def to_ids(names):
    mapping = {n: i for i, n in enumerate(sorted(set(names)))}
    return np.array([mapping[n] for n in names]), mapping


def main():
    torch.manual_seed(SEED)
    data = load_wine()
    rng = np.random.default_rng(SEED)
    perm = rng.permutation(len(data.target))
    names = np.array(data.target_names)[data.target][perm]
    X = data.data[perm]
    X = (X - X[:130].mean(0)) / X[:130].std(0)
    site_b = np.arange(130, len(X))[names[130:] != "class_0"]      # the second site grows two cultivars
    y_train, train_map = to_ids(names[:130])
    y_test = np.array([train_map[n] for n in names[site_b]])
    Xtr = torch.tensor(X[:130], dtype=torch.float32)
    Xte = torch.tensor(X[site_b], dtype=torch.float32)
    ytr, yte = torch.tensor(y_train), torch.tensor(y_test)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(Xtr), ytr).backward()
        opt.step()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
