# expect: regularization
# half: holdout
# source: PyTorch forum "adding an L1 penalty kills training" (lambda * sum(|w|) over all parameters, tuned for a mean, applied as a sum)
# fault: the L1 term 0.01 * sum |w| over ~5k weights outweighs the data loss and drives the weights to zero.
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = load_breast_cancer(return_X_y=True)
X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
perm = torch.randperm(len(X))
tr, te = perm[:450], perm[450:]

model = nn.Sequential(nn.Linear(30, 128), nn.ReLU(), nn.Linear(128, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
l1_lambda = 0.01


def l1_penalty(net):
    return sum(p.abs().sum() for p in net.parameters())


for epoch in range(15):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 45):
        b = order[i:i + 45]
        data_loss = nn.functional.binary_cross_entropy_with_logits(model(X[b]), y[b])
        loss = data_loss + l1_lambda * l1_penalty(model)
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = ((model(X[te]) > 0).float() == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
