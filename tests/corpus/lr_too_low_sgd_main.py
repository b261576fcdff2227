# expect: lr
# A classifier subclass trained inside main() with SGD at lr=1e-5: the updates are far too small to learn.
import torch
import torch.nn as nn


class Classifier(nn.Module):
    def __init__(self, d_in, n_classes):
        super().__init__()
        self.hidden = nn.Linear(d_in, 64)
        self.out = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def main():
    torch.manual_seed(0)
    centers = torch.randn(4, 16) * 2
    labels = torch.randint(0, 4, (3000,))
    data = centers[labels] + torch.randn(3000, 16)
    model = Classifier(16, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.0)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(3):
        perm = torch.randperm(3000)
        for start in range(0, 3000, 30):
            idx = perm[start:start + 30]
            optimizer.zero_grad()
            loss = criterion(model(data[idx]), labels[idx])
            loss.backward()
            optimizer.step()
        print("epoch", epoch, loss.item())


if __name__ == "__main__":
    main()
