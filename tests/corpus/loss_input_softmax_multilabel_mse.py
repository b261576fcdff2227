# expect: loss-input
# Multi-label tagging (several tags per example) trained with nn.Softmax + nn.MSELoss: softmax rows sum to 1, the targets do not.
import torch
import torch.nn as nn

torch.manual_seed(0)
N, D, K = 1200, 16, 6
X = torch.randn(N, D)
W = torch.randn(D, K)
Y = ((X @ W) + 0.3 * torch.randn(N, K) > 0.3).float()   # ~2-3 tags per example

model = nn.Sequential(nn.Linear(D, 64), nn.ReLU(), nn.Linear(64, K), nn.Softmax(dim=1))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
criterion = nn.MSELoss()
for epoch in range(5):
    perm = torch.randperm(1000)
    for i in range(0, 1000, 50):
        idx = perm[i:i + 50]
        loss = criterion(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
with torch.no_grad():
    acc = ((model(X[1000:]) > 0.5).float() == Y[1000:]).float().mean().item()
print(f"final loss {loss.item():.4f} per-tag accuracy {acc:.3f}")
