# expect: activation
# F.relu network trained with plain SGD at lr=5.0: early huge updates push most hidden units negative for every input (dying ReLU).
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def main():
    torch.manual_seed(0)
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=5.0)
    for epoch in range(2):
        for i in range(0, 1500, 32):
            opt.zero_grad()
            loss = F.cross_entropy(net(X[i:i + 32]), y[i:i + 32])
            loss.backward()
            opt.step()
        print("epoch", epoch, loss.item())


if __name__ == "__main__":
    main()
