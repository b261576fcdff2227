# expect: loss-input
# Image-like multi-label attributes: a subclass ends in F.softmax(dim=-1) and trains with F.binary_cross_entropy against multi-hot rows.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Tagger(nn.Module):
    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 48), nn.Tanh())
        self.out = nn.Linear(48, k)

    def forward(self, x):
        return F.softmax(self.out(self.body(x)), dim=-1)


def main():
    torch.manual_seed(1)
    n, d, k = 900, 12, 4
    x = torch.randn(n, d)
    y = torch.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] + x[:, 3] > 0, x[:, 4] > -0.5], dim=1).float()
    ds = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(ds, batch_size=30, shuffle=True)
    model = Tagger(d, k)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for epoch in range(3):
        for xb, yb in loader:
            loss = F.binary_cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
