# expect: zero-grad
# Gradient accumulation over 4 micro-batches from a DataLoader (nn.Module subclass, main(), AdamW), but optimizer.zero_grad() sits at the top of every micro-batch: only the last micro-batch before each step is ever used.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

ACCUM_STEPS = 4


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.body(x))


def main():
    torch.manual_seed(0)
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    loader = DataLoader(TensorDataset(X[:800], y[:800]), batch_size=16, shuffle=True)
    model = Classifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(2):
        for i, (xb, yb) in enumerate(loader):
            optimizer.zero_grad()
            loss = criterion(model(xb), yb) / ACCUM_STEPS
            loss.backward()
            if (i + 1) % ACCUM_STEPS == 0:
                optimizer.step()
        print(epoch, loss.item() * ACCUM_STEPS)


if __name__ == "__main__":
    main()
