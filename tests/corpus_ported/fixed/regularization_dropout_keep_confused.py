# expect: healthy
# half: tune
# fixed twin of ../regularization_dropout_keep_confused.py: the drop probability is 1 - keep_prob.
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
        self.drop = nn.Dropout(p=1 - KEEP_PROB)

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
