# expect: regularization
# half: tune
# source: Stack Overflow "TensorFlow keep_prob vs PyTorch Dropout(p)" (keep probability 0.9 ported as nn.Dropout(0.9), which drops 90%)
# fault: nn.Dropout(p=0.9) after every hidden layer drops 90% of the units; the network underfits badly.
import os

import torch
import torch.nn as nn
from sklearn.datasets import make_classification

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
KEEP_PROB = 0.9


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 3)
        self.drop = nn.Dropout(p=KEEP_PROB)

    def forward(self, x):
        x = self.drop(torch.relu(self.fc1(x)))
        x = self.drop(torch.relu(self.fc2(x)))
        return self.out(x)


def main():
    torch.manual_seed(SEED)
    X, y = make_classification(n_samples=1200, n_features=20, n_informative=10, n_classes=3,
                               random_state=SEED)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(6):
        model.train()
        perm = torch.randperm(1000)
        for i in range(0, 1000, 50):
            b = perm[i:i + 50]
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(X[1000:]).argmax(1) == y[1000:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
