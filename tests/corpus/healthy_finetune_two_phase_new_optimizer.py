# expect: healthy
# Two-phase fine-tuning: phase 1 trains the head with SGD, phase 2 builds ONE new Adam optimizer over all parameters at a smaller rate (a deliberate, single re-creation).
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.backbone(x))


torch.manual_seed(0)
X = torch.randn(1200, 20)
Y = (X[:, :3] + 0.3 * torch.randn(1200, 3)).argmax(1)
model = Net()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(3):
    for i in range(0, 1200, 40):
        optimizer.zero_grad()
        loss = criterion(model(X[i:i + 40]), Y[i:i + 40])
        loss.backward()
        optimizer.step()
print("phase 1 loss", round(loss.item(), 4))
optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)  # phase 2: lower rate
for epoch in range(3):
    for i in range(0, 1200, 40):
        optimizer.zero_grad()
        loss = criterion(model(X[i:i + 40]), Y[i:i + 40])
        loss.backward()
        optimizer.step()
print("phase 2 loss", round(loss.item(), 4))
