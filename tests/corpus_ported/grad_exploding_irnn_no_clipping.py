# expect: grad
# half: tune
# source: AUTOTRAINER "exploding gradient" / Le et al. IRNN recipe used without its gradient clipping (PyTorch forum "RNN loss goes to nan")
# fault: a ReLU RNN with identity recurrent init over 40 steps is trained with SGD and no gradient clipping; a few steps in, gradient norms reach 1e3+ and the loss explodes.
import os

import math

import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class IRNN(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.rnn = nn.RNN(2, hidden, nonlinearity="relu", batch_first=True)
        nn.init.eye_(self.rnn.weight_hh_l0)
        nn.init.zeros_(self.rnn.bias_hh_l0)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def adding_problem(n, T, gen):
    values = torch.rand(n, T, generator=gen)
    marks = torch.zeros(n, T)
    for k in range(n):
        a, b = torch.randperm(T, generator=gen)[:2]
        marks[k, a] = marks[k, b] = 1.0
    return torch.stack([values, marks], -1), (values * marks).sum(1, keepdim=True)


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    X, y = adding_problem(800, 40, gen)
    model = IRNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(4):
        for i in range(0, 640, 32):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(X[i:i + 32]), y[i:i + 32])
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = nn.functional.mse_loss(model(X[640:]), y[640:]).item()
    print(f"final: mse={mse if math.isfinite(mse) else float('inf'):.4f}")


if __name__ == "__main__":
    main()
