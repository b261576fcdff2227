# expect: shape
# half: holdout
# source: Stack Overflow / PyTorch forum "UserWarning: Using a target size that is different to the input size" (MSELoss of (N,1) output against (N,) target)
# fault: the regression head returns (N, 1) while the targets are (N,); MSELoss broadcasts to (N, N) and the model learns the mean.
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_regression
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))


def main():
    torch.manual_seed(SEED)
    X, y = make_regression(n_samples=600, n_features=8, noise=5.0, random_state=SEED)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    train = TensorDataset(X[:480], y[:480])
    loader = DataLoader(train, batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(15):
        for xb, yb in loader:
            optimizer.zero_grad()
            pred = model(xb)
            loss = criterion(pred, yb)
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(X[480:]).squeeze(1)
        mse = float(np.mean((pred.numpy() - y[480:].numpy()) ** 2))
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
