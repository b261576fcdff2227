# expect: lr
# A short run (60 steps) of plain SGD at lr=1e-4 on a small CNN: every update is ~1e-5 of the weights and
# the loss does not move; the rate, not a plateau of the model, is the problem.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(h.flatten(1))


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    y = torch.tensor(y)
    model = TinyCNN()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    for step in range(60):
        i = (step * 32) % 1400
        loss = F.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
