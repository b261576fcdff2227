# expect: init
# A 6-hidden-layer ReLU MLP initialised with normal(0, 0.01): the signal shrinks ~17x per layer and is gone at the output.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)

layers = [nn.Linear(64, 100), nn.ReLU()]
for _ in range(5):
    layers += [nn.Linear(100, 100), nn.ReLU()]
layers.append(nn.Linear(100, 10))
model = nn.Sequential(*layers)
for layer in model:
    if isinstance(layer, nn.Linear):
        nn.init.normal_(layer.weight, mean=0.0, std=0.01)
        nn.init.zeros_(layer.bias)

opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()
for epoch in range(1):
    for i in range(0, len(X), 50):
        opt.zero_grad()
        loss = criterion(model(X[i:i + 50]), y[i:i + 50])
        loss.backward()
        opt.step()
    print("epoch", epoch, "loss", round(loss.item(), 4))
