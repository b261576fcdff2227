"""Train a small classifier on scikit-learn's handwritten digits (the ``make demo`` example).

This script looks reasonable and even runs without an error, but it contains two common
bugs that make it learn slowly and badly. Run it under nndoctor to find them:

    nndoctor run examples/buggy_digits.py --max-steps 60
"""

import argparse

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset


def build_model(n_features: int, n_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_features, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, n_classes),
        nn.Softmax(dim=1),          # bug 1: CrossEntropyLoss below applies softmax itself
    )


def load_data(batch_size: int):
    X, y = load_digits(return_X_y=True)
    # bug 2: the 8x8 pixels are kept as raw intensities 0..16, never scaled or standardised
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    train = TensorDataset(torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train))
    test = TensorDataset(torch.tensor(X_test, dtype=torch.float32), torch.tensor(y_test))
    return DataLoader(train, batch_size=batch_size, shuffle=True), DataLoader(test, batch_size=256)


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in loader:
            correct += (model(xb).argmax(dim=1) == yb).sum().item()
            total += len(yb)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    torch.manual_seed(0)
    train_loader, test_loader = load_data(args.batch_size)
    model = build_model(64, 10)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(args.epochs):
        model.train()
        running = 0.0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        print(f"epoch {epoch + 1}: loss {running / len(train_loader):.4f}  "
              f"test accuracy {evaluate(model, test_loader):.3f}")


if __name__ == "__main__":
    main()
