# expect: healthy
# half: tune
# fixed twin of ../train_mode_logging_helper_leaves_eval.py: the helper restores the previous mode after measuring.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

X, y = make_classification(n_samples=1200, n_features=16, n_informative=8, random_state=SEED)
X = torch.tensor(X * 30.0 + 80.0, dtype=torch.float32)    # raw sensor units; BatchNorm is relied on
y = torch.tensor(y)

model = nn.Sequential(nn.BatchNorm1d(16), nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def batch_accuracy(net, xb, yb):
    was_training = net.training
    net.eval()
    with torch.no_grad():
        acc = (net(xb).argmax(1) == yb).float().mean().item()
    net.train(was_training)
    return acc


model.train()
step = 0
for epoch in range(6):
    perm = torch.randperm(1000)
    for i in range(0, 1000, 50):
        b = perm[i:i + 50]
        if step % 20 == 0:
            print(f"step {step} batch acc {batch_accuracy(model, X[b], y[b]):.3f}")
        logits = model(X[b])
        loss = F.cross_entropy(logits, y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1

model.eval()
with torch.no_grad():
    acc = (model(X[1000:]).argmax(1) == y[1000:]).float().mean().item()
print(f"final: acc={acc:.4f}")
