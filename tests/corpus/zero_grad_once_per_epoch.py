# expect: zero-grad
# optimizer.zero_grad() sits in the epoch loop instead of the batch loop: gradients pile up over every batch of an epoch.
# args: --max-steps 60
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(x.flatten(1))


def main():
    torch.manual_seed(0)
    images = torch.rand(640, 1, 8, 8)
    labels = (images.mean(dim=(1, 2, 3)) * 20).long().clamp(max=9)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=32, shuffle=True)
    net = ConvNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for epoch in range(3):
        optimizer.zero_grad()
        running = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        print(f"epoch {epoch}: mean loss {running / len(loader):.4f}")


if __name__ == "__main__":
    main()
