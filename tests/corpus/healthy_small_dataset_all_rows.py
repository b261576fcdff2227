# expect: healthy
# A small data set used whole: iris (150 rows), standardised, 105 rows to train and 45 to test.
import torch
import torch.nn as nn
from sklearn.datasets import load_iris

torch.manual_seed(0)
X, y = load_iris(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
X, y = X[perm], y[perm]
X = (X - X[:105].mean(0)) / X[:105].std(0)
X_train, y_train, X_test, y_test = X[:105], y[:105], X[105:], y[105:]
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(30):
    for i in range(0, 105, 15):
        loss = nn.functional.cross_entropy(model(X_train[i:i + 15]), y_train[i:i + 15])
        opt.zero_grad()
        loss.backward()
        opt.step()
with torch.no_grad():
    print((model(X_test).argmax(1) == y_test).float().mean().item())
