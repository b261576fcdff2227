# expect: healthy
# An LSTM (one hidden layer, tanh) classifying generated sequences by the sign of their running sum.
import torch
import torch.nn as nn


class SeqClassifier(nn.Module):
    def __init__(self, n_features=4, hidden=32, n_classes=2):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.head(h[-1])


def make_data(n, length=15, n_features=4):
    x = torch.randn(n, length, n_features)
    y = (x[:, :, 0].sum(dim=1) > 0).long()
    return x, y


torch.manual_seed(1)
x_train, y_train = make_data(1024)
x_val, y_val = make_data(256)

model = SeqClassifier()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(6):
    model.train()
    for i in range(0, len(x_train), 64):
        xb, yb = x_train[i:i + 64], y_train[i:i + 64]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        val_acc = (model(x_val).argmax(-1) == y_val).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.4f} val acc {val_acc:.3f}")

print(f"final loss {loss.item():.4f} val accuracy {val_acc:.3f}")
