# expect: healthy
# A binary classifier returning one logit per example, squeezed to (N,) and trained with BCEWithLogitsLoss on float targets.
import torch
import torch.nn as nn

torch.manual_seed(0)
n = 1200
X = torch.randn(n, 8)
logit = 2.0 * X[:, 0] - 1.5 * X[:, 1] + X[:, 2] * X[:, 3]
y = (torch.rand(n) < torch.sigmoid(logit)).float()

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

for epoch in range(6):
    perm = torch.randperm(1000)
    for i in range(0, 1000, 50):
        idx = perm[i:i + 50]
        logits = model(X[idx]).squeeze(1)      # (50,)
        loss = criterion(logits, y[idx])       # (50,) vs (50,)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        probs = torch.sigmoid(model(X[1000:]).squeeze(1))
        acc = ((probs > 0.5).float() == y[1000:]).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.4f} val acc {acc:.3f}")

print(f"final loss {loss.item():.4f} val accuracy {acc:.3f}")
