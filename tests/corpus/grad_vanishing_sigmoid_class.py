# expect: grad
# A deep nn.Module with F.sigmoid hidden activations in a ModuleList (Adam, main()): the first layers get ~1e-6 of the last layer's gradient.
import torch
import torch.nn as nn
import torch.nn.functional as F


class DeepClassifier(nn.Module):
    def __init__(self, n_in=20, hidden=48, depth=8, n_out=3):
        super().__init__()
        sizes = [n_in] + [hidden] * depth
        self.blocks = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x):
        for block in self.blocks:
            x = torch.sigmoid(block(x))
        return self.head(x)


def main():
    torch.manual_seed(3)
    X = torch.randn(3000, 20)
    y = torch.bucketize(X[:, 0] + 0.5 * X[:, 1], torch.tensor([-0.5, 0.5]))
    model = DeepClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    for _step in range(40):
        idx = torch.randint(0, len(X), (128,))
        logits = model(X[idx])
        loss = F.cross_entropy(logits, y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print("final loss", loss.item())


if __name__ == "__main__":
    main()
