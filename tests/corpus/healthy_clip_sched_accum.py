# expect: healthy
# Gradient accumulation over 4 micro-batches (zero_grad every 4th), clip_grad_norm_ and a StepLR scheduler.
import torch
import torch.nn as nn

torch.manual_seed(0)
n_classes = 5
X = torch.randn(2048, 16)
W_true = torch.randn(16, n_classes)
y = (X @ W_true + 0.3 * torch.randn(2048, n_classes)).argmax(1)

model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, n_classes))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
criterion = nn.CrossEntropyLoss()
accum_steps = 4
micro_batch = 16

for epoch in range(5):
    optimizer.zero_grad()
    for i, start in enumerate(range(0, len(X), micro_batch)):
        xb, yb = X[start:start + micro_batch], y[start:start + micro_batch]
        loss = criterion(model(xb), yb) / accum_steps
        loss.backward()
        if (i + 1) % accum_steps == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            optimizer.zero_grad()
    scheduler.step()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    print(f"epoch {epoch} lr {scheduler.get_last_lr()[0]:.4f} loss {loss.item() * accum_steps:.4f} acc {acc:.3f}")

print(f"final loss {loss.item() * accum_steps:.4f} train accuracy {acc:.3f}")
