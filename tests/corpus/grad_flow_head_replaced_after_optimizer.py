# expect: grad-flow
# Transfer learning: the classifier head is replaced AFTER the optimizer was built, so the new head is never trained.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits


class ConvNet(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 2 * 2, n_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
y = torch.tensor(y)
even = y % 2 == 0
model = ConvNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
model.fc = nn.Linear(16 * 2 * 2, 2)  # new task: odd vs even
target = (y % 2).long()
criterion = nn.CrossEntropyLoss()
for epoch in range(2):
    for i in range(0, len(X), 64):
        optimizer.zero_grad()
        loss = criterion(model(X[i:i + 64]), target[i:i + 64])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
