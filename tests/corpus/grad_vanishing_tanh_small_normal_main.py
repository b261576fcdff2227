# expect: grad
# A deep tanh regressor (nn.Module subclass, main(), SGD with momentum) initialised like an old Keras model (normal, std 0.05): the signal and the gradients vanish through the 10 tanh layers, no hidden layer learns.
import torch
import torch.nn as nn


class DeepTanh(nn.Module):
    def __init__(self, n_in, hidden=48, depth=10):
        super().__init__()
        dims = [n_in] + [hidden] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.out = nn.Linear(hidden, 1)
        for layer in list(self.hidden) + [self.out]:
            nn.init.normal_(layer.weight, mean=0.0, std=0.05)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.out(x)


def main():
    torch.manual_seed(4)
    X = torch.randn(2000, 10)
    y = (torch.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]).unsqueeze(1)
    model = DeepTanh(10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(3):
        for i in range(0, len(X), 50):
            pred = model(X[i:i + 50])
            loss = nn.functional.mse_loss(pred, y[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} mse {loss.item():.4f}")


if __name__ == "__main__":
    main()
