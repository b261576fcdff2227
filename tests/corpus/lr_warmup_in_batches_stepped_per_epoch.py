# expect: lr
# A small CNN-free digits classifier (nn.Module, main(), AdamW) with a linear warm-up + decay schedule built in batches (warm-up = 2 epochs of batches), but scheduler.step() sits in the epoch loop: after 12 epochs the warm-up is 12/62 done and the whole run trains at a fraction of the lr.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


def linear_warmup_decay(warmup, total):
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / (total - warmup))
    return factor


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    epochs, batch = 12, 48
    batches = 1500 // batch
    model = MLP()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup_decay(2 * batches, epochs * batches))
    for epoch in range(epochs):
        perm = torch.randperm(1500)
        for i in range(batches):
            idx = perm[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            acc = (model(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
        print(f"epoch {epoch} lr {sched.get_last_lr()[0]:.2e} loss {loss.item():.3f} val acc {acc:.3f}")


if __name__ == "__main__":
    main()
