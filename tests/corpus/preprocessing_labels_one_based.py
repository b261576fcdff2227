# expect: preprocessing
# Class labels stored 1..3 (as in the source CSV) are passed to CrossEntropyLoss of a 3-output model: crashes.
import torch
import torch.nn as nn
from sklearn.datasets import load_iris


def main():
    torch.manual_seed(0)
    X, y = load_iris(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y + 1, dtype=torch.long)      # the CSV numbers the species 1, 2, 3
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(20):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 16):
            idx = perm[i:i + 16]
            opt.zero_grad()
            loss = criterion(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
    print("loss", loss.item())


if __name__ == "__main__":
    main()
