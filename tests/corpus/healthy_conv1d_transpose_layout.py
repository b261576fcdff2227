# expect: healthy
# Sequences stored as (N, T, C) moved to Conv1d's (N, C, T) with transpose; a flatten with view is fine.
import torch
import torch.nn as nn

torch.manual_seed(0)
N, T, C = 256, 16, 3
seqs = torch.randn(N, T, C)
labels = (seqs[:, :, 0].cumsum(1)[:, -1] > 0).long()
conv = nn.Sequential(nn.Conv1d(C, 8, 3, padding=1), nn.ReLU())
fc = nn.Linear(8 * T, 2)
opt = torch.optim.SGD(list(conv.parameters()) + list(fc.parameters()), lr=0.05, momentum=0.9)
for epoch in range(4):
    for i in range(0, N, 32):
        xb = seqs[i:i + 32].transpose(1, 2)
        h = conv(xb)
        logits = fc(h.view(h.shape[0], -1))
        loss = nn.CrossEntropyLoss()(logits, labels[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
