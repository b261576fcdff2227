# expect: grad-flow
# The model is rebuilt with model = Net() at the top of every epoch (meant to be outside the loop) while the Adam optimizer still holds the first model's parameters: nothing that runs is trained.
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 48), nn.ReLU(), nn.Linear(48, 3))

    def forward(self, x):
        return self.body(x)


torch.manual_seed(0)
X = torch.randn(1500, 12)
Y = (X[:, :3] * torch.tensor([1.5, -1.0, 0.7])).argmax(1)
model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(6):
    model = Net()
    model.train()
    for i in range(0, 1500, 60):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(X[i:i + 60]), Y[i:i + 60])
        loss.backward()
        optimizer.step()
    print("epoch", epoch, round(loss.item(), 4))
