# expect: preprocessing
# Tabular data: StandardScaler fitted and applied to the training split only; the validation loader gets the raw columns.
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, TensorDataset


def main():
    torch.manual_seed(0)
    X, y = load_breast_cancer(return_X_y=True)
    scaler = StandardScaler().fit(X[:450])
    train = TensorDataset(torch.tensor(scaler.transform(X[:450]), dtype=torch.float32), torch.tensor(y[:450]))
    val = TensorDataset(torch.tensor(X[450:], dtype=torch.float32), torch.tensor(y[450:]))   # forgot transform
    train_loader = DataLoader(train, batch_size=32, shuffle=True)
    val_loader = DataLoader(val, batch_size=64)
    model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(5):
        model.train()
        for xb, yb in train_loader:
            loss = criterion(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in val_loader:
                correct += (model(xb).argmax(1) == yb).sum().item()
        print(f"epoch {epoch} loss {loss.item():.3f} val accuracy {correct / len(val):.3f}")


if __name__ == "__main__":
    main()
