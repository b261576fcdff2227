# expect: activation
# An MLP whose Linear biases are "initialised" to -4 before each nn.ReLU: almost every hidden unit outputs 0 and never recovers.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
data = load_digits()
X = torch.tensor(data.data, dtype=torch.float32) / 16.0
y = torch.tensor(data.target)

model = nn.Sequential(
    nn.Linear(64, 128), nn.ReLU(),
    nn.Linear(128, 64), nn.ReLU(),
    nn.Linear(64, 10),
)
for m in model:
    if isinstance(m, nn.Linear) and m.out_features != 10:
        nn.init.constant_(m.bias, -4.0)

optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(1):
    for i in range(0, len(X), 64):
        optimizer.zero_grad()
        loss = loss_fn(model(X[i:i + 64]), y[i:i + 64])
        loss.backward()
        optimizer.step()
    print(epoch, loss.item())
