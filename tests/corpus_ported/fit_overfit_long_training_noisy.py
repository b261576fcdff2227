# expect: fit
# half: holdout
# source: DeepFD "too many epochs" / Stack Overflow "validation loss increases while training loss goes to zero" (overfitting a small noisy set)
# fault: a 2x256 MLP is trained for 1500 full-batch steps on 24 noisy samples with no early stopping; it threads through the noise and the test error grows.
import os

import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    x_tr = torch.rand(24, 1) * 6 - 3
    y_tr = torch.sin(x_tr) + 0.4 * torch.randn(24, 1)
    x_te = torch.linspace(-3, 3, 200).unsqueeze(1)
    y_te = torch.sin(x_te)
    model = nn.Sequential(nn.Linear(1, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    steps = 1500
    for step in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x_tr), y_tr).backward()
        opt.step()
    with torch.no_grad():
        mse = nn.functional.mse_loss(model(x_te), y_te).item()
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
