# expect: loss-input
# Iris classifier: softmax taken over dim=0 (the batch) before log + NLLLoss, in a main() with SGD.
import torch
import torch.nn as nn
from sklearn.datasets import load_iris


class IrisNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x):
        return torch.softmax(self.net(x), 0)


def main():
    torch.manual_seed(0)
    X, y = load_iris(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y)
    perm = torch.randperm(150)
    X, y = X[perm], y[perm]
    model = IrisNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.NLLLoss()
    for epoch in range(30):
        for i in range(0, 120, 20):
            probs = model(X[i:i + 20])
            loss = criterion(torch.log(probs), y[i:i + 20])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    print(f"final loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
