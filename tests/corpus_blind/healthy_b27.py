# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
TEMPERATURE = 0.05


class CosineClassifier(nn.Module):
    def __init__(self, d_in, d_emb, n_classes):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d_in, 128), nn.ReLU(), nn.Linear(128, d_emb))
        self.prototypes = nn.Parameter(torch.randn(n_classes, d_emb))

    def forward(self, x):
        z = F.normalize(self.encoder(x), dim=1)
        p = F.normalize(self.prototypes, dim=1)
        return z @ p.t() / TEMPERATURE


def smoothed_cross_entropy(logits, target, eps=0.1):
    top = logits.max(dim=1, keepdim=True).values.detach()
    log_norm = top + torch.log(torch.exp(logits - top).sum(dim=1, keepdim=True))
    log_probs = logits - log_norm
    nll = -log_probs.gather(1, target[:, None]).squeeze(1)
    return ((1 - eps) * nll - eps * log_probs.mean(dim=1)).mean()


torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
idx = torch.randperm(len(X))
tr, te = idx[:1400], idx[1400:]

model = CosineClassifier(64, 32, 10)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(15):
    for b in torch.randperm(len(tr)).split(64):
        xb, yb = X[tr[b]], y[tr[b]]
        loss = smoothed_cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
