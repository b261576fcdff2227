# expect: healthy
# F.dropout(x, p, training=self.training) follows model.train()/model.eval(): validation is deterministic.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32) / 16.0
y = torch.tensor(y)
X_train, y_train, X_val, y_val = X[:1400], y[:1400], X[1400:], y[1400:]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.dropout(F.relu(self.fc1(x)), p=0.3, training=self.training)
        return self.fc2(x)


net = Net()
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
for epoch in range(4):
    net.train()
    perm = torch.randperm(len(X_train))
    for i in range(0, len(perm), 64):
        idx = perm[i:i + 64]
        opt.zero_grad()
        loss = F.cross_entropy(net(X_train[idx]), y_train[idx])
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        logits = net(X_val)
        val_loss = F.cross_entropy(logits, y_val).item()
        acc = (logits.argmax(1) == y_val).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.3f} val loss {val_loss:.3f} acc {acc:.3f}")
