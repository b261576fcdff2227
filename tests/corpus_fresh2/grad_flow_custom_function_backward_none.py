# expect: grad-flow
# half: holdout
# source: NeuraLint / defects4ML custom-operation faults; forum guides on torch.autograd.Function.backward ("return None for an input that does not need a gradient", runebook.dev/en/docs/pytorch/generated/torch.autograd.function.backward) misread as "None for the activations"
# fault: a custom autograd Function (a learnable channel gain) returns None as the gradient of its INPUT; the layers before it never receive a gradient and stay at their random init, only the gain and the head learn.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class ChannelGain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gain):
        ctx.save_for_backward(x, gain)
        return x * gain

    @staticmethod
    def backward(ctx, grad_out):
        x, gain = ctx.saved_tensors
        return None, (grad_out * x).sum(0)


class GainNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 12), nn.ReLU())
        self.gain = nn.Parameter(torch.ones(12))
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        return self.head(ChannelGain.apply(self.body(x), self.gain))


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = GainNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(15):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
