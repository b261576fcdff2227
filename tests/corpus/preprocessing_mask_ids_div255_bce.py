# expect: preprocessing
# Binary segmentation: the {0, 1} masks go through the same x / 255 as the images, so the targets are {0, 1/255}.
import torch
import torch.nn as nn

torch.manual_seed(0)
images = torch.randint(0, 256, (256, 1, 16, 16)).float()
masks = (images > 140).float()                       # ids 0 / 1
images, masks = images / 255.0, masks / 255.0        # "normalise the dataset"

model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 1))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.BCEWithLogitsLoss()
for epoch in range(3):
    for i in range(0, 256, 32):
        loss = criterion(model(images[i:i + 32]), masks[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
print(f"final loss {loss.item():.5f}")
