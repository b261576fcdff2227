# expect: healthy
# A plain MLP classifier on three Gaussian blobs, Adam at 1e-3, a top-level loop with mini-batches.
import torch
import torch.nn as nn

torch.manual_seed(0)

# three well-separated clusters in 10-D, standardised
centers = torch.randn(3, 10) * 3
y = torch.randint(0, 3, (1500,))
X = centers[y] + torch.randn(1500, 10)
X = (X - X.mean(0)) / X.std(0)
X_train, y_train, X_val, y_val = X[:1200], y[:1200], X[1200:], y[1200:]

model = nn.Sequential(
    nn.Linear(10, 64),
    nn.ReLU(),
    nn.Linear(64, 64),
    nn.ReLU(),
    nn.Linear(64, 3),
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()

batch_size = 64
for epoch in range(5):
    perm = torch.randperm(len(X_train))
    total = 0.0
    for i in range(0, len(X_train), batch_size):
        idx = perm[i:i + batch_size]
        xb, yb = X_train[idx], y_train[idx]
        optimizer.zero_grad()
        logits = model(xb)
        loss = criterion(logits, yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    print(f"epoch {epoch} train loss {total / len(X_train):.4f}")

with torch.no_grad():
    acc = (model(X_val).argmax(1) == y_val).float().mean().item()
print(f"final loss {loss.item():.4f} val accuracy {acc:.3f}")
