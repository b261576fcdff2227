# expect: healthy
# Curriculum learning: the regression target gets noisier and the inputs wider each stage (easy examples first), so the training loss goes up from stage to stage on purpose.
import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.MSELoss()
w = torch.randn(4, 1)

for stage, (spread, noise) in enumerate([(0.5, 0.0), (1.0, 0.2), (2.0, 0.5), (3.0, 1.0)]):
    for step in range(100):
        x = torch.randn(64, 4) * spread
        y = torch.sin(x @ w) + noise * torch.randn(64, 1)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"stage {stage}: spread {spread} noise {noise} loss {loss.item():.4f}")
