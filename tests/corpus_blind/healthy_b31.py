# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = load_iris(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=SEED, stratify=y)
mu, sd = Xtr.mean(0), Xtr.std(0)
Xtr = torch.tensor((Xtr - mu) / sd, dtype=torch.float32)
Xte = torch.tensor((Xte - mu) / sd, dtype=torch.float32)
ytr, yte = torch.tensor(ytr), torch.tensor(yte)

model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=10, line_search_fn="strong_wolfe")
losses = []


def closure():
    model.zero_grad()
    loss = nn.functional.cross_entropy(model(Xtr), ytr) + 1e-2 * sum((p ** 2).sum() for p in model.parameters())
    loss.backward()
    return loss


for outer in range(10):
    losses.append(optimizer.step(closure).item())

with torch.no_grad():
    acc = (model(Xte).argmax(1) == yte).float().mean().item()
print(f"final: acc={acc:.4f}")
