# expect: preprocessing
# Wine features standardised with one global mean/std instead of per column: most columns end up ~constant.
import torch
import torch.nn as nn
from sklearn.datasets import load_wine


def main():
    torch.manual_seed(0)
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    X, y = X[perm], y[perm]
    X = (X - X.mean()) / X.std()          # meant X.mean(0) / X.std(0)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(30):
        for i in range(0, 140, 20):
            opt.zero_grad()
            loss = loss_fn(model(X[i:i + 20]), y[i:i + 20])
            loss.backward()
            opt.step()
    acc = (model(X[140:]).argmax(1) == y[140:]).float().mean().item()
    print(f"loss {loss.item():.3f} held-out accuracy {acc:.2f}")


if __name__ == "__main__":
    main()
