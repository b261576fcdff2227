# expect: optimizer
# A Sequential classifier trained with SGD+momentum at a normal rate, but every step clips the gradient norm to 1e-3 (meant 1.0): the step is ~1000x too small and the loss crawls.
import torch
import torch.nn as nn

torch.manual_seed(0)
centers = torch.randn(5, 20) * 2
labels = torch.randint(0, 5, (4000,))
data = centers[labels] + torch.randn(4000, 20)
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()
for epoch in range(5):
    perm = torch.randperm(len(data))
    for start in range(0, len(data), 64):
        idx = perm[start:start + 64]
        optimizer.zero_grad()
        loss = criterion(model(data[idx]), labels[idx])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e-3)
        optimizer.step()
    with torch.no_grad():
        acc = (model(data).argmax(1) == labels).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.4f} acc {acc:.3f}")
