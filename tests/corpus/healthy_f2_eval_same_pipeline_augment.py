# expect: healthy
# One preprocessing function for both splits; training-only augmentation (random flips and Gaussian noise); evaluation each epoch.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
labels = torch.tensor(digits.target)
MEAN, STD = (images[:1400] / 16).mean(), (images[:1400] / 16).std()


def preprocess(x):
    return (x / 16 - MEAN) / STD


def augment(x):
    flip = torch.rand(len(x), 1, 1, 1) < 0.5
    return torch.where(flip, x.flip(-1), x) + 0.2 * torch.randn_like(x)


train_x, test_x = preprocess(images[:1400]), preprocess(images[1400:])
model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 10))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(4):
    model.train()
    perm = torch.randperm(1400)
    for i in range(0, 1400, 64):
        idx = perm[i:i + 64]
        loss = nn.functional.cross_entropy(model(augment(train_x[idx])), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(test_x).argmax(1) == labels[1400:]).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.3f} test accuracy {acc:.3f}")
