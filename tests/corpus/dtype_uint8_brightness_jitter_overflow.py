# expect: dtype
# Brightness augmentation added to uint8 images before the float conversion: x + 60 wraps modulo 256,
# so bright pixels turn dark.
import torch
import torch.nn as nn


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def main():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (320, 1, 8, 8), dtype=torch.uint8)
    labels = (images.float().mean((1, 2, 3)) > 127.5).long()
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(2):
        for i in range(0, 320, 32):
            xb = images[i:i + 32]
            xb = torch.add(xb, 60)                      # brightness jitter, still uint8
            xb = xb.float() / 255.0
            loss = nn.functional.cross_entropy(model(xb), labels[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()


if __name__ == "__main__":
    main()
