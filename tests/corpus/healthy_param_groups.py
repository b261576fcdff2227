# expect: healthy
# AdamW with parameter groups (no weight decay on biases/LayerNorm, a 10x lower lr for the encoder), model.zero_grad().
import torch
import torch.nn as nn
import torch.nn.functional as F


class Encoder(nn.Module):
    def __init__(self, d_in, d):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d)
        self.norm = nn.LayerNorm(d)
        self.fc2 = nn.Linear(d, d)

    def forward(self, x):
        return F.gelu(self.fc2(F.gelu(self.norm(self.fc1(x)))))


class Model(nn.Module):
    def __init__(self, d_in=16, d=64, n_classes=4):
        super().__init__()
        self.encoder = Encoder(d_in, d)
        self.head = nn.Linear(d, n_classes)

    def forward(self, x):
        return self.head(self.encoder(x))


def param_groups(model, lr, weight_decay):
    groups = []
    for module, module_lr in ((model.encoder, lr / 10), (model.head, lr)):
        decay, no_decay = [], []
        for name, p in module.named_parameters():
            (no_decay if p.ndim < 2 else decay).append(p)
        groups.append({"params": decay, "lr": module_lr, "weight_decay": weight_decay})
        groups.append({"params": no_decay, "lr": module_lr, "weight_decay": 0.0})
    return groups


torch.manual_seed(0)
X = torch.randn(1600, 16)
y = (X[:, :8].sum(1) > 0).long() * 2 + (X[:, 8] + X[:, 9] > 0.5).long()

model = Model()
optimizer = torch.optim.AdamW(param_groups(model, lr=1e-2, weight_decay=0.05))
for epoch in range(6):
    perm = torch.randperm(1300)
    for i in range(0, 1300, 50):
        idx = perm[i:i + 50]
        model.zero_grad()
        loss = F.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (model(X[1300:]).argmax(1) == y[1300:]).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} val acc {acc:.3f}")
print(f"final loss {loss.item():.4f} val accuracy {acc:.3f}")
