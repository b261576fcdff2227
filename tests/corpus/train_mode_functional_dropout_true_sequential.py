# expect: train-mode
# A custom block inside nn.Sequential calls F.dropout(..., training=True): evaluation after model.eval() still drops units.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(1500, 12)
y = (X[:, :3].sum(1) - X[:, 3] * X[:, 4] > 0).long()
Xtr, ytr, Xva, yva = X[:1200], y[:1200], X[1200:], y[1200:]


class DropBlock(nn.Module):
    def __init__(self, n_in, n_out, p):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)
        self.p = p

    def forward(self, x):
        return F.dropout(torch.tanh(self.lin(x)), p=self.p, training=True)


model = nn.Sequential(DropBlock(12, 64, 0.3), DropBlock(64, 64, 0.3), nn.Linear(64, 2))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

for epoch in range(5):
    model.train()
    perm = torch.randperm(len(Xtr))
    for i in range(0, len(Xtr), 50):
        idx = perm[i:i + 50]
        optimizer.zero_grad()
        loss = criterion(model(Xtr[idx]), ytr[idx])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(Xva), yva).item()
    print(f"epoch {epoch} train {loss.item():.3f} val {val_loss:.3f}")
