# expect: healthy
# half: holdout
# source: lookalike of grad_flow_custom_function_backward_none; a straight-through estimator written as a custom torch.autograd.Function (round in the forward, identity in the backward), as in binarised-network and VQ tutorials
# fault: none. The custom Function's forward rounds (zero derivative) but its backward passes grad_out through unchanged on purpose, so the encoder before the binary code keeps learning.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out


class BinaryCodeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 16))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(RoundSTE.apply(torch.sigmoid(self.enc(x))))


torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]
model = BinaryCodeNet()
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
