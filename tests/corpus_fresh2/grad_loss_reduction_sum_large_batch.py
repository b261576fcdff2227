# expect: grad
# half: tune
# source: DeepCrime "change loss function" mutation class; forum questions "loss explodes after switching to reduction='sum'" (the gradient of a summed loss grows with the batch size, the lr was tuned for the mean)
# fault: MSELoss(reduction="sum") over batches of 256 with an SGD lr tuned for the mean: every gradient is 256x too large, the first updates overshoot and the weights blow up.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_regression

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = make_regression(n_samples=3000, n_features=10, n_informative=8, noise=5.0, random_state=SEED)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
y = (y - y[:2500].mean()) / y[:2500].std()

model = nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 1))
loss_fn = nn.MSELoss(reduction="sum")
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(20):
    order = torch.randperm(2500)
    for i in range(0, 2500, 256):
        b = order[i:i + 256]
        opt.zero_grad()
        loss_fn(model(X[b]), y[b]).backward()
        opt.step()

with torch.no_grad():
    mse = nn.functional.mse_loss(model(X[2500:]), y[2500:]).item()
print(f"final: mse={mse:.4f}")
