# expect: regularization
# Weight-norm penalties on selected layers, torch.norm(model.fc1.weight) + torch.norm(model.fc2.weight), scaled by 2.0 (nn.Module, F.cross_entropy, SGD in a train() function): the penalty dominates the loss.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer


class Net(nn.Module):
    def __init__(self, n_in):
        super().__init__()
        self.fc1 = nn.Linear(n_in, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def train(model, X, y, epochs=5):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 32):
            idx = perm[i:i + 32]
            out = model(X[idx])
            reg = torch.norm(model.fc1.weight) + torch.norm(model.fc2.weight)
            loss = F.cross_entropy(out, y[idx]) + 2.0 * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


torch.manual_seed(2)
X, y = load_breast_cancer(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
train(Net(X.shape[1]), X, torch.tensor(y))
