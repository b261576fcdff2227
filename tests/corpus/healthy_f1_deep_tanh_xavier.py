# expect: healthy
# Healthy twin of the deep tanh/sigmoid stacks: 6 tanh layers with Glorot init (gain 5/3) and SGD with momentum on standardised features; gradients reach the first layer.
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer


def main():
    torch.manual_seed(0)
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y)
    layers, width = [], X.shape[1]
    for _ in range(6):
        layers += [nn.Linear(width, 40), nn.Tanh()]
        width = 40
    model = nn.Sequential(*layers, nn.Linear(width, 2))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(6):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
