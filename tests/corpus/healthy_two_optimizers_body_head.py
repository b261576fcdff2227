# expect: healthy
# Two optimizers on purpose, over disjoint parts of one model (SGD with momentum for the body, Adam for the head), both stepped after each backward; the head's parameters are collected by name.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.body(x))


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    model = Net()
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt_body = torch.optim.SGD(body, lr=0.05, momentum=0.9)
    opt_head = torch.optim.Adam(head, lr=1e-3)
    for epoch in range(4):
        perm = torch.randperm(1500)
        for i in range(0, 1500, 64):
            idx = perm[i:i + 64]
            opt_body.zero_grad()
            opt_head.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt_body.step()
            opt_head.step()
        with torch.no_grad():
            acc = (model(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
        print(f"epoch {epoch} val acc {acc:.3f}")


if __name__ == "__main__":
    main()
