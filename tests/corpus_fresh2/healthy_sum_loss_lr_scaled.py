# expect: healthy
# half: tune
# source: lookalike of grad_loss_reduction_sum_large_batch; a summed loss (reduction="sum", as in many VAE / classic-NN codebases) with the lr scaled down by the batch size
# fault: none. The loss is summed over batches of 256 on purpose and the SGD lr is 0.05 / 256, so each step is the same as a mean loss with lr 0.05.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_regression

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
BATCH = 256

torch.manual_seed(SEED)
X, y = make_regression(n_samples=3000, n_features=10, n_informative=8, noise=5.0, random_state=SEED)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
y = (y - y[:2500].mean()) / y[:2500].std()

model = nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 1))
loss_fn = nn.MSELoss(reduction="sum")
opt = torch.optim.SGD(model.parameters(), lr=0.05 / BATCH, momentum=0.9)
for epoch in range(20):
    order = torch.randperm(2500)
    for i in range(0, 2500, BATCH):
        b = order[i:i + BATCH]
        opt.zero_grad()
        loss_fn(model(X[b]), y[b]).backward()
        opt.step()

with torch.no_grad():
    mse = nn.functional.mse_loss(model(X[2500:]), y[2500:]).item()
print(f"final: mse={mse:.4f}")
