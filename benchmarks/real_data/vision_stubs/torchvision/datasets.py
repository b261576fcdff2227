"""MNIST-like data sets from scikit-learn's handwritten digits (shipped, 1797 images of 8x8)."""

from __future__ import annotations

import os
from typing import Any, Callable

import torch

__all__ = ["MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "FakeData", "digits"]

#: how many training images (the 8x8 digits, upscaled, shifted by up to a pixel): small, for CPU runs;
#: a manifest entry whose script has its epochs written in its code sets a smaller one in its ``env``
TRAIN_SIZE = int(os.environ.get("NND_STUB_TRAIN_SIZE", "3000"))


def digits(train: bool, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, size, size) and int64 labels: digits 0-1496 for training, the last 300 for test (a round number, as scripts assume full test batches)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    y = torch.tensor(d.target, dtype=torch.int64)
    scale = (size - 4) // 8
    big = torch.kron(x, torch.ones(scale, scale))
    pad = (size - 8 * scale) // 2
    img = torch.zeros(len(x), size, size)
    img[:, pad:pad + 8 * scale, pad:pad + 8 * scale] = big
    if train:
        base, labels = img[:1497], y[:1497]
        shifts = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1)]
        parts = [torch.roll(base, s, dims=(1, 2)) for s in shifts]
        img, y = torch.cat(parts)[:TRAIN_SIZE], labels.repeat(len(shifts))[:TRAIN_SIZE]
        perm = torch.randperm(len(img), generator=torch.Generator().manual_seed(0))
        img, y = img[perm], y[perm]
    else:
        img, y = img[1497:], y[1497:]
    return (img * 255).round().to(torch.uint8), y


class MNIST(torch.utils.data.Dataset):
    classes = [f"{i} - digit" for i in range(10)]

    def __init__(self, root: Any = "", train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        self.data, self.targets = digits(train)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def train_data(self) -> torch.Tensor:  # the names of torchvision < 0.2.2, still read by old tutorials
        return self.data

    @property
    def train_labels(self) -> torch.Tensor:
        return self.targets

    test_data = train_data
    test_labels = train_labels

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


FashionMNIST = MNIST
KMNIST = MNIST


class CIFAR10(MNIST):
    """Colour 32x32 images (digits tinted per class), ``data`` as in torchvision: uint8 (N, 32, 32, 3)."""

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root: Any = "", train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, train, transform, target_transform, download)
        gray, _ = digits(train, size=32)
        tint = torch.rand(10, 3, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.4
        rgb = gray.float()[..., None] * tint[self.targets][:, None, None, :]
        self.data = rgb.round().to(torch.uint8).numpy()
        self.targets = self.targets.tolist()

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = torch.from_numpy(self.data[index]), int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class FakeData(torch.utils.data.Dataset):
    def __init__(self, size: int = 1000, image_size: tuple[int, int, int] = (3, 224, 224), num_classes: int = 10,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 random_offset: int = 0) -> None:
        self.size, self.image_size, self.num_classes = size, image_size, num_classes
        self.transform, self.target_transform, self.offset = transform, target_transform, random_offset

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        g = torch.Generator().manual_seed(index + self.offset)
        c, h, w = self.image_size
        img = (torch.rand(h, w, c, generator=g) * 255).to(torch.uint8)
        target = int(torch.randint(0, self.num_classes, (1,), generator=g))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
