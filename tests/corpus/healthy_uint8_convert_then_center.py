# expect: healthy
# uint8 images converted to float before centering and jitter; an in-range uint8 flip (255 - x) is fine.
import torch
import torch.nn as nn

torch.manual_seed(0)
images = torch.randint(0, 256, (320, 1, 8, 8), dtype=torch.uint8)
labels = (images.float().mean((1, 2, 3)) > 127.5).long()
inverted = 255 - images                               # stays in 0..255: no wraparound
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(2):
    for i in range(0, 320, 32):
        xb = (images[i:i + 32].float() - 127.5) / 127.5
        xb = xb + 0.05 * torch.randn_like(xb)
        loss = nn.functional.cross_entropy(model(xb), labels[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
print(inverted.float().mean().item())
