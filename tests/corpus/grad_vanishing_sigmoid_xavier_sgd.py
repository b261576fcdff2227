# expect: grad
# A 7-layer sigmoid MLP built in a loop (nn.Sequential, Glorot init, plain SGD, unnormalised-ish inputs): each sigmoid passes at most 1/4 of the gradient, so the first layers get ~1e-4 of the output layer's gradient.
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
X, y = load_breast_cancer(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0) * 3.0
y = torch.tensor(y)

layers, width = [], X.shape[1]
for _ in range(7):
    layers += [nn.Linear(width, 40), nn.Sigmoid()]
    width = 40
layers.append(nn.Linear(width, 2))
model = nn.Sequential(*layers)
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)

optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(4):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 32):
        idx = perm[i:i + 32]
        optimizer.zero_grad()
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
