# expect: healthy
# A torch Dataset subclass serving uint8 images, converted in __getitem__ with float()/255 then mean/std normalised.
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class StripesDataset(Dataset):
    """12x12 uint8 images: vertical stripes (label 0), horizontal stripes (1) or a checkerboard (2)."""

    MEAN, STD = 0.5, 0.3

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 3, (n,), generator=g)
        idx = torch.arange(12)
        patterns = torch.stack([
            (idx % 4 < 2).float().expand(12, 12),                                     # vertical
            (idx % 4 < 2).float().unsqueeze(1).expand(12, 12),                        # horizontal
            ((idx.unsqueeze(0) // 2 + idx.unsqueeze(1) // 2) % 2).float(),            # checkerboard
        ])
        noise = torch.rand(n, 12, 12, generator=g) * 0.6
        imgs = 0.2 + 0.6 * patterns[self.labels] * (0.5 + noise) + 0.25 * torch.randn(n, 12, 12, generator=g)
        self.images = (imgs.clamp(0, 1) * 255).to(torch.uint8)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float().div(255.0)
        x = (x - self.MEAN) / self.STD
        return x.unsqueeze(0), self.labels[i]


def main():
    torch.manual_seed(0)
    train_loader = DataLoader(StripesDataset(800, seed=1), batch_size=32, shuffle=True)
    test_loader = DataLoader(StripesDataset(200, seed=2), batch_size=100)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 3 * 3, 32), nn.ReLU(), nn.Linear(32, 3),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(3):
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                correct += (model(images).argmax(1) == labels).sum().item()
        print(f"epoch {epoch}: loss {loss.item():.4f} test acc {correct / 200:.3f}")
    print(f"final loss {loss.item():.4f} test accuracy {correct / 200:.3f}")


if __name__ == "__main__":
    main()
