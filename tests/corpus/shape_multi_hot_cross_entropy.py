# expect: shape
# Multi-label tags encoded as multi-hot float rows (N, C) fed to nn.CrossEntropyLoss, which reads them as probabilities.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(640, 12)
W = torch.randn(12, 5)
tags = (X @ W > 0.5).float()                   # several tags per row

model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()
for epoch in range(4):
    for i in range(0, 640, 64):
        loss = criterion(model(X[i:i + 64]), tags[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
