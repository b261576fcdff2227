# expect: preprocessing
# Training images are scaled and standardised, the test images are fed raw (0..255): a conv net, Adam, an accuracy pass per epoch.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images * 16, dtype=torch.float32).clamp(max=255).unsqueeze(1)
labels = torch.tensor(digits.target)
train_x, test_x = images[:1400], images[1400:]
mean, std = (train_x / 255).mean(), (train_x / 255).std()
train_x = (train_x / 255 - mean) / std                 # the test split never gets this


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 16, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


model = ConvNet()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(3):
    model.train()
    perm = torch.randperm(1400)
    for i in range(0, 1400, 64):
        idx = perm[i:i + 64]
        loss = nn.functional.cross_entropy(model(train_x[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(test_x).argmax(1) == labels[1400:]).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.3f} test accuracy {acc:.3f}")
