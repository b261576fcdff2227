# expect: init
# A deep sigmoid network whose weights are redrawn from N(0, 1) (std 1, not 1/sqrt(fan_in)): every hidden layer
# starts saturated, so the gradient reaching the first layers is tiny.
import torch
import torch.nn as nn


class DeepSigmoid(nn.Module):
    def __init__(self, width=48, depth=5):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(16 if i == 0 else width, width) for i in range(depth)])
        self.head = nn.Linear(width, 1)
        for layer in self.layers:
            layer.weight.data = torch.randn_like(layer.weight)

    def forward(self, x):
        for layer in self.layers:
            x = torch.sigmoid(layer(x))
        return self.head(x)


def main():
    torch.manual_seed(0)
    X = torch.randn(640, 16)
    y = (X[:, :2].sum(dim=1, keepdim=True) > 0).float()
    model = DeepSigmoid()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    crit = nn.BCEWithLogitsLoss()
    for epoch in range(3):
        for i in range(0, 640, 32):
            opt.zero_grad()
            loss = crit(model(X[i:i + 32]), y[i:i + 32])
            loss.backward()
            opt.step()
    print(f"final: loss={loss.item():.4g}")


main()
