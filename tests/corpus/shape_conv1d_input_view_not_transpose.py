# expect: shape
# Sequences stored as (N, T, C) are reshaped for Conv1d with .view(N, C, T) instead of .transpose(1, 2):
# time steps and channels are scrambled together.
import torch
import torch.nn as nn

torch.manual_seed(0)
N, T, C = 256, 16, 3
seqs = torch.randn(N, T, C)
labels = (seqs[:, :, 0].cumsum(1)[:, -1] > 0).long()
model = nn.Sequential(nn.Conv1d(C, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                      nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(4):
    for i in range(0, N, 32):
        xb = seqs[i:i + 32]
        logits = model(xb.view(xb.shape[0], C, T))
        loss = nn.CrossEntropyLoss()(logits, labels[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
