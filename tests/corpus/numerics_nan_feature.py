# expect: numerics
# A tabular dataset with a few missing values stored as NaN; the rows reach the model and the first NaN batch poisons the weights.
# args: --max-steps 40
import torch
import torch.nn as nn
import torch.nn.functional as F


class TabularNet(nn.Module):
    def __init__(self, n_in, n_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU())
        self.head = nn.Linear(48, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def make_data(n=1200, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()
    missing = torch.rand(n, generator=g) < 0.01
    X[missing, 5] = float("nan")  # "missing" sensor readings
    return X, y


def main():
    torch.manual_seed(0)
    X, y = make_data()
    model = TabularNet(X.shape[1], 3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32, shuffle=True)
    for epoch in range(3):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
