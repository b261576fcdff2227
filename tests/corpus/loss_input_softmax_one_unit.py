# expect: loss-input
# A binary classifier with one output unit passed through softmax(dim=1): the prediction is always 1.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Classifier(nn.Module):
    def __init__(self, n_in=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return F.softmax(self.body(x), dim=1)


torch.manual_seed(0)
X = torch.randn(600, 8)
y = ((X[:, 0] + X[:, 1] * X[:, 2]) > 0).float().unsqueeze(1)
model = Classifier()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.BCELoss()
for epoch in range(5):
    for i in range(0, 600, 40):
        pred = model(X[i:i + 40])
        loss = loss_fn(pred, y[i:i + 40])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
