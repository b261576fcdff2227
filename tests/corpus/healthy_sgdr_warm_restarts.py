# expect: healthy
# SGD with momentum and CosineAnnealingWarmRestarts stepped per batch: the lr jumps back up at each restart and the loss bumps, but the weights are never re-initialised.
import torch
import torch.nn as nn

torch.manual_seed(0)
centers = torch.randn(5, 20) * 0.35
labels = torch.randint(0, 5, (3000,))
data = centers[labels] + torch.randn(3000, 20)
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
steps_per_epoch = 3000 // 50
scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=steps_per_epoch)
criterion = nn.CrossEntropyLoss()
for epoch in range(6):
    perm = torch.randperm(3000)
    for i in range(0, 3000, 50):
        idx = perm[i:i + 50]
        optimizer.zero_grad()
        loss = criterion(model(data[idx]), labels[idx])
        loss.backward()
        optimizer.step()
        scheduler.step()
    print(f"epoch {epoch} loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.4f}")
