# expect: healthy
# A narrow path of 3-unit ReLU layers (nn.Module subclass, F.relu, SGD with momentum) that stays alive: every narrow layer passes a signal for some inputs, and the model learns the wine classes.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_wine


class Compressed(nn.Module):
    def __init__(self, n_in, n_out, width=3, depth=2):
        super().__init__()
        self.inp = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.out = nn.Linear(width, n_out)

    def forward(self, x):
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h = F.relu(block(h))
        return self.out(h)


torch.manual_seed(0)
X, y = load_wine(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(y)

model = Compressed(X.shape[1], 3)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(40):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 32):
        idx = perm[i:i + 32]
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    if epoch % 10 == 0:
        print(f"epoch {epoch} loss {loss.item():.3f}")
