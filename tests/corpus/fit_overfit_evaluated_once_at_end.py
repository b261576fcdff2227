# expect: fit
# 60 noisy examples, a wide MLP trained for 150 epochs, and a validation loss computed once after training (full
# batch, no_grad): the training loss reaches ~0 while the held-out loss is worse than predicting the class priors.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(260, 10)
y = ((X[:, 0] + 0.8 * torch.randn(260)) > 0).long()
X_train, y_train, X_val, y_val = X[:60], y[:60], X[60:], y[60:]
model = nn.Sequential(nn.Linear(10, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(150):
    for i in range(0, 60, 20):
        loss = F.cross_entropy(model(X_train[i:i + 20]), y_train[i:i + 20])
        opt.zero_grad()
        loss.backward()
        opt.step()
model.eval()
with torch.no_grad():
    val_loss = F.cross_entropy(model(X_val), y_val)
print(f"train {loss.item():.4g} val {val_loss.item():.4g}")
print(f"final: val_loss={val_loss.item():.4g}")
