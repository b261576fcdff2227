# expect: healthy
# half: tune
# source: lookalike of lr_lambda_returns_absolute_lr; the "Noam" schedule of the annotated Transformer, written as Adam(lr=1.0) with a LambdaLR whose lambda returns the absolute lr
# fault: none. Adam's base lr is 1.0 on purpose, so the lambda's value IS the lr: d_model^-0.5 * min(step^-0.5, step * warmup^-1.5) peaks at ~3e-3 after the warm-up and then decays.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
D_MODEL, WARMUP, FACTOR = 64, 100, 0.25


def noam(step):
    step = step + 1
    return FACTOR * D_MODEL ** -0.5 * min(step ** -0.5, step * WARMUP ** -1.5)


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = nn.Sequential(nn.Linear(64, D_MODEL), nn.ReLU(), nn.LayerNorm(D_MODEL), nn.Linear(D_MODEL, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, noam)
    for epoch in range(10):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
