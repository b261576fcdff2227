# expect: healthy
# half: tune
# source: lookalike of fit_best_checkpoint_comparison_flipped; early stopping on the validation loss with patience and the best weights restored (a common tutorial pattern)
# fault: none. The tracker starts at +inf and keeps the LOWEST validation loss; training stops after 3 epochs without improvement and the best epoch's weights are restored, which is the intended model selection.
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
PATIENCE = 3


def main():
    torch.manual_seed(SEED)
    X, y = load_breast_cancer(return_X_y=True)
    perm = torch.randperm(len(X)).numpy()
    X, y = X[perm], y[perm]
    X = (X - X[:350].mean(0)) / X[:350].std(0)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    tr, va, te = slice(0, 350), slice(350, 460), slice(460, None)
    model = nn.Sequential(nn.Linear(30, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    best, best_state, bad = float("inf"), None, 0
    for epoch in range(100):
        order = torch.randperm(350)
        for i in range(0, 350, 32):
            b = order[i:i + 32]
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(model(X[tr][b]).squeeze(1), y[tr][b]).backward()
            opt.step()
        with torch.no_grad():
            val = F.binary_cross_entropy_with_logits(model(X[va]).squeeze(1), y[va]).item()
        if val < best:
            best, best_state, bad = val, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= PATIENCE:
                break
    model.load_state_dict(best_state)
    with torch.no_grad():
        acc = ((model(X[te]).squeeze(1) > 0).float() == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
