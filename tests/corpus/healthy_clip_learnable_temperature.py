# expect: healthy
# CLIP-style contrastive training of two encoders (two views of paired data) with a learnable logit scale (temperature) and a symmetric cross entropy over the batch similarity matrix; one AdamW over both.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
n = 2048
z = torch.randn(n, 8)
a_view = torch.cat([z @ torch.randn(8, 24), 0.1 * torch.randn(n, 4)], 1)
b_view = torch.tanh(z @ torch.randn(8, 16)) + 0.1 * torch.randn(n, 16)


class Clip(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc_a = nn.Sequential(nn.Linear(28, 64), nn.GELU(), nn.Linear(64, 32))
        self.enc_b = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 32))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, a, b):
        fa = F.normalize(self.enc_a(a), dim=-1)
        fb = F.normalize(self.enc_b(b), dim=-1)
        return self.logit_scale.exp() * fa @ fb.t()


model = Clip()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
for epoch in range(4):
    perm = torch.randperm(n)
    for i in range(0, n, 256):
        idx = perm[i:i + 256]
        logits = model(a_view[idx], b_view[idx])
        labels = torch.arange(len(idx))
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
    print(epoch, loss.item())
