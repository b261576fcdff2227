# expect: data
# Tabular data with every row stored twice before a random split: about half of the test rows are training rows.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler


def main():
    torch.manual_seed(0)
    data = load_breast_cancer()
    x = np.concatenate([data.data, data.data])  # bug: rows duplicated (e.g. a file appended twice)
    y = np.concatenate([data.target, data.target])
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    cut = int(0.8 * len(x))
    scaler = StandardScaler().fit(x[idx[:cut]])
    x_train = torch.tensor(scaler.transform(x[idx[:cut]]), dtype=torch.float32)
    y_train = torch.tensor(y[idx[:cut]], dtype=torch.float32)
    x_test = torch.tensor(scaler.transform(x[idx[cut:]]), dtype=torch.float32)
    y_test = torch.tensor(y[idx[cut:]], dtype=torch.float32)

    model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(10):
        perm = torch.randperm(len(x_train))
        for i in range(0, len(x_train), 32):
            b = perm[i:i + 32]
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(model(x_train[b]).squeeze(1), y_train[b])
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = F.binary_cross_entropy_with_logits(model(x_test).squeeze(1), y_test)
        print(f"epoch {epoch}: val loss {val.item():.4f}")


if __name__ == "__main__":
    main()
