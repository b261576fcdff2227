# expect: preprocessing
# A small CNN on 3-channel images whose Dataset normalises with the ImageNet constants in the wrong order, (x / 255 - std) / mean.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class Shapes(Dataset):
    """Bright squares on dark noise (class 1) or dark noise only (class 0), stored as uint8."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.images = (torch.rand(n, 3, 16, 16, generator=g) * 120).to(torch.uint8)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        for i in torch.nonzero(self.labels).flatten().tolist():
            r, c = torch.randint(0, 10, (2,), generator=g).tolist()
            self.images[i, :, r:r + 6, c:c + 6] = 255
        self.images[:, :, 0, 0] = 0

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float() / 255.0
        x = (x - STD) / MEAN  # bug: mean and std swapped
        return x, self.labels[i]


model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2),
)
torch.manual_seed(0)
loader = DataLoader(Shapes(512, 0), batch_size=32, shuffle=True)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(2):
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
