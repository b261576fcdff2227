# expect: healthy
# Knowledge distillation: a fixed teacher (BatchNorm, left in train mode) runs under no_grad; an EMA copy of the student (weights averaged, batch-norm statistics copied) is evaluated.
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


def make(width, p):
    return nn.Sequential(nn.Linear(64, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(p), nn.Linear(width, 10))


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    teacher = make(128, 0.0)
    student = make(32, 0.2)
    ema = copy.deepcopy(student)
    opt = torch.optim.Adam(student.parameters(), lr=2e-3)
    for epoch in range(3):
        student.train()
        perm = torch.randperm(1500)
        for i in range(0, 1500, 100):
            idx = perm[i:i + 100]
            with torch.no_grad():
                soft = F.softmax(teacher(X[idx]) / 2.0, dim=1)
            logits = student(X[idx])
            loss = 0.5 * F.cross_entropy(logits, y[idx]) + 0.5 * F.kl_div(
                F.log_softmax(logits / 2.0, dim=1), soft, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for pe, ps in zip(ema.parameters(), student.parameters()):
                    pe.mul_(0.9).add_(ps, alpha=0.1)
                for be, bs in zip(ema.buffers(), student.buffers()):
                    be.copy_(bs)  # (the batch-norm statistics follow the student too)
        ema.eval()
        student.eval()
        with torch.no_grad():
            acc = (student(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
            ema_acc = (ema(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.3f} acc {acc:.3f} ema acc {ema_acc:.3f}")


if __name__ == "__main__":
    main()
