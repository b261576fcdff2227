# expect: healthy
# A LeNet-like CNN on scikit-learn digits (8x8, scaled to [0,1] then standardised), SGD with momentum, in main().
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(16 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # 8x8 -> 4x4
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # 4x4 -> 2x2
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def main():
    torch.manual_seed(0)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    mean, std = images[:1400].mean(), images[:1400].std()
    images = (images - mean) / std
    train = TensorDataset(images[:1400], labels[:1400])
    test_x, test_y = images[1400:], labels[1400:]
    loader = DataLoader(train, batch_size=64, shuffle=True)

    model = LeNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(5):
        model.train()
        running = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        print(f"epoch {epoch}: loss {running / len(loader):.4f}")

    model.eval()
    with torch.no_grad():
        acc = (model(test_x).argmax(dim=1) == test_y).float().mean().item()
    print(f"final loss {loss.item():.4f} test accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
