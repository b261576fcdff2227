# expect: preprocessing
# Binary segmentation masks saved as {0, 255} are used directly as BCEWithLogitsLoss targets.
import torch
import torch.nn as nn

torch.manual_seed(0)
n = 256
images = torch.rand(n, 1, 16, 16)
masks = (images > 0.6).float() * 255                 # PNG masks loaded as 0/255

net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
bce = nn.BCEWithLogitsLoss()
for epoch in range(3):
    for i in range(0, n, 32):
        opt.zero_grad()
        loss = bce(net(images[i:i + 32]), masks[i:i + 32])
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.2f}")
