# expect: healthy
# half: tune
# fixed twin of ../lr_step_scheduler_per_batch.py: the scheduler steps once per epoch.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=1200, n_features=20, n_informative=10, n_classes=4,
                               n_clusters_per_class=1, random_state=SEED)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    loader = DataLoader(TensorDataset(X[:1000], y[:1000]), batch_size=50, shuffle=True)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(8):
        for xb, yb in loader:
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()
        scheduler.step()
    with torch.no_grad():
        acc = (model(X[1000:]).argmax(1) == y[1000:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
