# expect: train-mode
# half: tune
# source: TrainCheck (silent issue class "model left in eval mode during training"); PyTorch forum "accuracy helper called during training switches BatchNorm off"
# fault: a batch-accuracy helper calls model.eval() before the first update and nothing switches back, so BatchNorm never normalises the (uncentred) inputs during training.
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
    net.eval()
    with torch.no_grad():
        return (net(xb).argmax(1) == yb).float().mean().item()


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
