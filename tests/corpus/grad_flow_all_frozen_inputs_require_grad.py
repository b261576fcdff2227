# expect: grad-flow
# Every layer frozen with requires_grad_(False) (nn.Module, Adam), but the inputs were built with requires_grad=True, so loss.backward() runs: the optimizer holds only frozen parameters and nothing is ever updated, silently.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


def main():
    torch.manual_seed(2)
    data = torch.randn(2048, 8)
    target = (data[:, 0] * 2 - data[:, 1] + 0.5 * data[:, 2] ** 2).unsqueeze(1)
    inputs = torch.tensor(data.numpy(), requires_grad=True)
    model = Regressor()
    for layer in (model.fc1, model.fc2, model.out):
        layer.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(4):
        total = 0.0
        for i in range(0, len(inputs), 128):
            pred = model(inputs[i:i + 128])
            loss = F.mse_loss(pred, target[i:i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch {epoch} mse {total / 16:.4f}")


if __name__ == "__main__":
    main()
