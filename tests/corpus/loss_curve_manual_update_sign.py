# expect: loss-curve
# A hand-written SGD update with the wrong sign (p += lr * grad): gradient ascent, the loss goes up.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(1024, 10)
y = (X[:, :3].sum(1) > 0).long()
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
criterion = nn.CrossEntropyLoss()
lr = 0.05

for epoch in range(8):
    for i in range(0, 1024, 32):
        loss = criterion(model(X[i:i + 32]), y[i:i + 32])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p += lr * p.grad
    print("epoch", epoch, "loss", loss.item())
