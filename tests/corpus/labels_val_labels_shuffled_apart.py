# expect: labels
# The validation inputs are shuffled with their own permutation and the validation labels are not: training fits, validation sits at chance (read as overfitting).
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
x_train, y_train, x_val, y_val = x[:1400], y[:1400], x[1400:], y[1400:]
x_val = x_val[torch.randperm(len(x_val))]  # bug: meant p = randperm; x_val, y_val = x_val[p], y_val[p]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, inp):
        return self.fc2(F.relu(self.fc1(inp)))


model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for epoch in range(6):
    model.train()
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 32):
        b = perm[i:i + 32]
        opt.zero_grad()
        loss = F.cross_entropy(model(x_train[b]), y_train[b])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(x_val)
        val_loss = F.cross_entropy(out, y_val).item()
        acc = (out.argmax(1) == y_val).float().mean().item()
    print(f"epoch {epoch}: train {loss.item():.3f} val {val_loss:.3f} acc {acc:.3f}")
