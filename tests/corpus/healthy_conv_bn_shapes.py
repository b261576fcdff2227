# expect: healthy
# A small conv net with BatchNorm2d and a global-average-pool head on generated 16x16 images (bars vs crosses vs blobs).
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_images(n, size=16):
    y = torch.randint(0, 3, (n,))
    x = 0.3 * torch.randn(n, 1, size, size)
    pos = torch.randint(3, size - 3, (n, 2))
    for i in range(n):
        r, c = pos[i].tolist()
        if y[i] == 0:                      # horizontal bar
            x[i, 0, r, 2:-2] += 1.5
        elif y[i] == 1:                    # cross
            x[i, 0, r, c - 3:c + 4] += 1.5
            x[i, 0, r - 3:r + 4, c] += 1.5
        else:                              # square blob
            x[i, 0, r - 2:r + 2, c - 2:c + 2] += 1.5
    return x, y


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(32, 3)

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


torch.manual_seed(0)
x_train, y_train = make_images(768)
x_test, y_test = make_images(256)
model = ConvNet()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.CrossEntropyLoss()

for epoch in range(4):
    model.train()
    perm = torch.randperm(len(x_train))
    for i in range(0, len(perm), 32):
        idx = perm[i:i + 32]
        optimizer.zero_grad()
        loss = criterion(model(x_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.4f} test acc {acc:.3f}")

print(f"final loss {loss.item():.4f} test accuracy {acc:.3f}")
