# expect: healthy
# Multi-task model: shared trunk, a classification head (cross-entropy) and a regression head (smooth L1), losses summed.
import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiTask(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.cls_head = nn.Linear(64, 4)
        self.reg_head = nn.Linear(64, 1)

    def forward(self, x):
        h = self.trunk(x)
        return self.cls_head(h), self.reg_head(h).squeeze(-1)


torch.manual_seed(0)
X = torch.randn(2000, 12)
cls = (X[:, :4] * torch.tensor([1.0, -1.0, 0.5, 2.0])).argmax(1)
reg = X[:, 4] * X[:, 5] + 0.5 * X[:, 6] + 0.1 * torch.randn(2000)

model = MultiTask()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(5):
    perm = torch.randperm(1600)
    for i in range(0, 1600, 64):
        idx = perm[i:i + 64]
        logits, value = model(X[idx])
        loss_cls = F.cross_entropy(logits, cls[idx])
        loss_reg = F.smooth_l1_loss(value, reg[idx])
        loss = loss_cls + 0.5 * loss_reg
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits, value = model(X[1600:])
        acc = (logits.argmax(1) == cls[1600:]).float().mean().item()
        mse = F.mse_loss(value, reg[1600:]).item()
    print(f"epoch {epoch}: loss {loss.item():.4f} val acc {acc:.3f} val mse {mse:.3f}")

print(f"final loss {loss.item():.4f} val accuracy {acc:.3f} val mse {mse:.3f} (target var {reg.var().item():.2f})")
