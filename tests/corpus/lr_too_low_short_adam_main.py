# expect: lr
# A regression net (nn.Module subclass, main(), Adam) with lr=1e-7 for 3 short epochs (60 steps): the weights barely change and the loss stays where it started.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 1)

    def forward(self, x):
        return self.fc3(F.gelu(self.fc2(F.gelu(self.fc1(x)))))


def main():
    torch.manual_seed(5)
    X = torch.randn(1280, 6)
    y = (X[:, 0] - 2 * X[:, 1] + X[:, 2] * X[:, 3]).unsqueeze(1) + 3.0
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-7)
    for epoch in range(3):
        for i in range(0, len(X), 64):
            loss = F.mse_loss(model(X[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} mse {loss.item():.4f}")


if __name__ == "__main__":
    main()
