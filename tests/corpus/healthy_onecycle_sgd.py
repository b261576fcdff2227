# expect: healthy
# OneCycleLR (warm-up then anneal) with SGD+Nesterov on a small residual MLP subclass, functional loss.
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualMLP(nn.Module):
    def __init__(self, d_in, width, n_out, blocks=2):
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
                                     for _ in range(blocks)])
        self.out = nn.Linear(width, n_out)

    def forward(self, x):
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h = F.relu(h + block(h))
        return self.out(h)


def main():
    torch.manual_seed(3)
    X = torch.randn(1600, 12)
    y = ((X[:, 0] * X[:, 1] > 0).long() + (X[:, 2] > 0.5).long())  # 3 classes
    model = ResidualMLP(12, 48, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    epochs, bs = 6, 32
    steps_per_epoch = len(X) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=epochs, steps_per_epoch=steps_per_epoch)
    for epoch in range(epochs):
        perm = torch.randperm(len(X))
        for s in range(steps_per_epoch):
            idx = perm[s * bs:(s + 1) * bs]
            opt.zero_grad()
            loss = F.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            acc = (model(X).argmax(1) == y).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.4f} acc {acc:.3f}")
    print(f"final loss {loss.item():.4f} train accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
