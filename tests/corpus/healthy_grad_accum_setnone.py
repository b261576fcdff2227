# expect: healthy
# Gradient accumulation over 2 micro-batches with zero_grad(set_to_none=False), plus a manual p.grad = None reset each epoch.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(960, 12)
y = (X[:, 0] - X[:, 3] > 0).long()
model = nn.Sequential(nn.Linear(12, 48), nn.ReLU(), nn.Linear(48, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
crit = nn.CrossEntropyLoss()
accum = 2

for epoch in range(4):
    for p in model.parameters():
        p.grad = None
    for k, i in enumerate(range(0, len(X), 24)):
        loss = crit(model(X[i:i + 24]), y[i:i + 24]) / accum
        loss.backward()
        if (k + 1) % accum == 0:
            opt.step()
            opt.zero_grad(set_to_none=False)
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    print(f"epoch {epoch} accuracy {acc:.3f}")
