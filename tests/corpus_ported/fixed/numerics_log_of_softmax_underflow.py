# expect: healthy
# half: holdout
# fixed twin of ../numerics_log_of_softmax_underflow.py: F.log_softmax computes the log-probabilities stably.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=1000, n_features=12, n_informative=6, n_classes=4,
                               flip_y=0.1, random_state=SEED)
    X = torch.tensor(X * 40.0, dtype=torch.float32)
    y = torch.tensor(y)
    model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.Adam(model.parameters(), lr=5e-2)
    for epoch in range(10):
        perm = torch.randperm(800)
        for i in range(0, 800, 40):
            b = perm[i:i + 40]
            logits = model(X[b])
            log_probs = F.log_softmax(logits, dim=1)
            loss = F.nll_loss(log_probs, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[800:]).argmax(1) == y[800:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
