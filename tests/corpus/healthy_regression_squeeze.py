# expect: healthy
# Linear-ish regression on scikit-learn diabetes: predictions squeezed to (N,) to match (N,) targets, F.mse_loss, SGD.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_diabetes


def main():
    torch.manual_seed(0)
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    X_train, y_train, X_test, y_test = X[:350], y[:350], X[350:], y[350:]

    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    for epoch in range(10):
        perm = torch.randperm(len(X_train))
        for i in range(0, len(perm), 32):
            idx = perm[i:i + 32]
            pred = model(X_train[idx]).squeeze(-1)     # (32,)
            loss = F.mse_loss(pred, y_train[idx])      # (32,) vs (32,)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 5 == 4:
            with torch.no_grad():
                test_mse = F.mse_loss(model(X_test).squeeze(-1), y_test).item()
            print(f"epoch {epoch}: train mse {loss.item():.4f} test mse {test_mse:.4f}")
    print(f"final loss {loss.item():.4f} test mse {test_mse:.4f} (predicting the mean gives ~1.0)")


if __name__ == "__main__":
    main()
