# expect: train-mode
# A small conv net with BatchNorm and Dropout is tested at the end under torch.no_grad() but still in train mode.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
y = torch.tensor(y)
X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(self.drop(x.flatten(1)))


net = LeNet()
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
for _epoch in range(2):
    perm = torch.randperm(len(X_train))
    for i in range(0, len(X_train), 50):
        idx = perm[i:i + 50]
        opt.zero_grad()
        F.cross_entropy(net(X_train[idx]), y_train[idx]).backward()
        opt.step()

with torch.no_grad():
    acc = (net(X_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy {acc:.3f}")
