# expect: optimizer
# AdamW with betas=(0.999, 0.9): the two decay rates are swapped, so the first moment outlives the second and steps blow up.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Regressor(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU())
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        return self.head(self.body(x)).squeeze(-1)


def train():
    torch.manual_seed(0)
    X = torch.randn(4096, 10)
    y = X[:, 0] * 2 - X[:, 1] + 0.1 * torch.randn(4096)
    model = Regressor(10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.999, 0.9), weight_decay=0.01)
    for _step in range(60):
        idx = torch.randint(0, 4096, (128,))
        loss = F.mse_loss(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


if __name__ == "__main__":
    print("final", train())
