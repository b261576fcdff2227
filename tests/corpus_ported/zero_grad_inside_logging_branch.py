# expect: zero-grad
# half: tune
# source: Stack Overflow "loss explodes after refactoring the training loop" (zero_grad indented into the periodic-logging branch)
# fault: optimizer.zero_grad() sits inside `if step % 25 == 0:`, so gradients pile up over 25 steps between clears.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_diabetes

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32).unsqueeze(1)
    perm = torch.randperm(len(X))
    tr, te = perm[:350], perm[350:]
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    loss_fn = nn.MSELoss()
    step = 0
    for epoch in range(20):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 25):
            b = order[i:i + 25]
            loss = loss_fn(model(X[b]), y[b])
            if step % 25 == 0:
                print(f"step {step}: loss {loss.item():.4f}")
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    with torch.no_grad():
        test = loss_fn(model(X[te]), y[te]).item()
    print(f"final: mse={test:.4f}")


if __name__ == "__main__":
    main()
