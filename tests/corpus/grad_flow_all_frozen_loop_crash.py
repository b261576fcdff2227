# expect: grad-flow
# Meant to freeze the feature extractor, but the loop freezes every parameter of the model (main(), Adam): loss.backward() crashes "does not require grad".
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 48), nn.ReLU())
        self.classifier = nn.Linear(48, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    model = Net()
    for param in model.parameters():  # should have been model.features.parameters()
        param.requires_grad = False
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(2):
        for i in range(0, len(X), 64):
            logits = model(X[i:i + 64])
            loss = F.cross_entropy(logits, y[i:i + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
