# expect: fit
# half: holdout
# source: DeepFD "too many epochs" / Stack Overflow "validation loss increases while training loss goes to zero" (overfitting a small noisy set)
# fault: a 512-wide net is trained for 400 epochs on 120 noisy samples with no early stopping; it memorises the label noise and test accuracy falls.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=620, n_features=30, n_informative=5, flip_y=0.25,
                               class_sep=1.0, random_state=SEED)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    X_tr, y_tr, X_te, y_te = X[:120], y[:120], X[120:], y[120:]
    model = nn.Sequential(nn.Linear(30, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = 400
    for epoch in range(epochs):
        perm = torch.randperm(120)
        for i in range(0, 120, 60):
            b = perm[i:i + 60]
            opt.zero_grad()
            nn.functional.cross_entropy(model(X_tr[b]), y_tr[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X_te).argmax(1) == y_te).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
