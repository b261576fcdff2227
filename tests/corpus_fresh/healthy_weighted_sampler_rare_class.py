# expect: healthy
# half: holdout
# source: lookalike of data faults; WeightedRandomSampler with one weight PER SAMPLE (1 / count of its class), as in the PyTorch docs and forum answers on class imbalance
# fault: none. Batches are drawn with replacement so that the three classes appear about equally often; repeated rows of the rare class are intended.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=1500, n_features=12, n_informative=6, n_classes=3,
                               n_clusters_per_class=1, weights=[0.85, 0.1, 0.05], class_sep=1.5,
                               random_state=SEED + 7)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y)
    Xtr, ytr, Xte, yte = X[:1100], y[:1100], X[1100:], y[1100:]
    per_class = 1.0 / torch.bincount(ytr, minlength=3).float()
    sampler = WeightedRandomSampler(per_class[ytr], num_samples=len(ytr), replacement=True)
    loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=64, sampler=sampler)
    model = nn.Sequential(nn.Linear(12, 48), nn.ReLU(), nn.Linear(48, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for epoch in range(6):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        pred = model(Xte).argmax(1)
    recalls = [(pred[yte == c] == c).float().mean().item() for c in range(3) if (yte == c).any()]
    print(f"final: bacc={sum(recalls) / len(recalls):.4f}")


if __name__ == "__main__":
    main()
