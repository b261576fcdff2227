# expect: optimizer
# SGD with momentum=1.0 (typo for 0.9 / confusion with a keep factor): the velocity never decays and the weights run away.
import torch
import torch.nn as nn
from sklearn.datasets import load_iris

torch.manual_seed(0)
iris = load_iris()
X = torch.tensor(iris.data, dtype=torch.float32)
X = (X - X.mean(dim=0)) / X.std(dim=0)
y = torch.tensor(iris.target)

model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=1.0)
loss_fn = nn.CrossEntropyLoss()
for _epoch in range(10):
    for xb, yb in zip(X.split(25), y.split(25)):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
print("loss", loss.item())
