# expect: grad-flow
# The branch layers live in a plain dict (not nn.ModuleDict): they are not registered, so
# model.parameters() and the optimizer miss them and they stay at their random init.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class TwoBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.branches = {"a": nn.Linear(64, 32), "b": nn.Linear(64, 32)}
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.cat([F.relu(self.branches["a"](x)), torch.tanh(self.branches["b"](x))], dim=1)
        return self.out(h)


torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
model = TwoBranch()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for epoch in range(3):
    for i in range(0, 1400, 50):
        loss = F.cross_entropy(model(X[i:i + 50]), y[i:i + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
