# expect: healthy
# Fine-tuning with a frozen conv backbone kept in eval mode (frozen BatchNorm) by an overridden train(), plus gradient accumulation.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Dropout(0.1), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Linear(8 * 4 * 4, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))
        for p in self.backbone.parameters():
            p.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self.backbone.eval()  # frozen backbone: keep BatchNorm statistics fixed
        return self

    def forward(self, x):
        return self.head(self.backbone(x).flatten(1))


torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
y = torch.tensor(y)
model = Model()
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
accum = 2
for epoch in range(2):
    model.train()
    opt.zero_grad()
    for k, i in enumerate(range(0, 1500, 50)):
        loss = F.cross_entropy(model(X[i:i + 50]), y[i:i + 50]) / accum
        loss.backward()
        if (k + 1) % accum == 0:
            opt.step()
            opt.zero_grad()
    model.eval()
    with torch.no_grad():
        acc = (model(X[1500:]).argmax(1) == y[1500:]).float().mean().item()
    print(f"epoch {epoch} loss {loss.item() * accum:.3f} acc {acc:.3f}")
