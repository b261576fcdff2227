# expect: labels
# half: tune
# source: AUTOTRAINER / Stack Overflow "random horizontal flip ruins my left/right classifier" (an augmentation that changes the label is applied without changing the label)
# fault: the task is "is the blob on the left or the right"; a 50% horizontal-flip augmentation mirrors the image but keeps the label, so half the labels are wrong at random.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def make_images(n, gen):
    side = torch.randint(0, 2, (n,), generator=gen)           # 0 = left, 1 = right
    imgs = 0.3 * torch.randn(n, 1, 10, 10, generator=gen)
    rows = torch.randint(1, 8, (n,), generator=gen)
    for k in range(n):
        c = 1 + int(side[k]) * 6 + int(torch.randint(0, 2, (1,), generator=gen))
        imgs[k, 0, rows[k]:rows[k] + 2, c:c + 2] += 2.0
    return imgs, side


class Augmented(Dataset):
    def __init__(self, imgs, labels, gen):
        self.imgs, self.labels, self.gen = imgs, labels, gen

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img, label = self.imgs[i], self.labels[i]
        if torch.rand(1, generator=self.gen).item() < 0.5:
            img = img.flip(-1)
        return img, label


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    imgs, labels = make_images(700, gen)
    train = DataLoader(Augmented(imgs[:500], labels[:500], gen), batch_size=50, shuffle=True)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(6 * 25, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(6):
        for xb, yb in train:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(imgs[500:]).argmax(1) == labels[500:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
