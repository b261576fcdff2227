# expect: init
# Every Linear weight is filled with 0.01 in an init_weights() hook applied to the model: all units of a layer start identical and stay identical.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_iris


class IrisNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def init_weights(m):
    if isinstance(m, nn.Linear):
        m.weight.data.fill_(0.01)
        m.bias.data.fill_(0.0)


def main():
    torch.manual_seed(0)
    iris = load_iris()
    X = torch.tensor(iris.data, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(iris.target)
    model = IrisNet()
    model.apply(init_weights)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _epoch in range(10):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 30):
            idx = perm[i:i + 30]
            opt.zero_grad()
            loss = F.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
    print("loss", loss.item())


if __name__ == "__main__":
    main()
