# expect: healthy
# half: tune
# source: lookalike of loss-input faults; Hinton et al. knowledge distillation: KLDivLoss(log_softmax(s / T), softmax(t / T)) * T^2 (PyTorch KLDivLoss docs)
# fault: none. A teacher is trained, then a smaller student learns from the teacher's softened probabilities through KLDivLoss on log-probabilities, plus the hard-label loss.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
T = 3.0

torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]

teacher = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
student = nn.Sequential(nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))
kl = nn.KLDivLoss(reduction="batchmean")


def batches():
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 50):
        yield order[i:i + 50]


opt = torch.optim.Adam(teacher.parameters(), lr=3e-3)
for epoch in range(3):
    for b in batches():
        opt.zero_grad()
        F.cross_entropy(teacher(X[b]), y[b]).backward()
        opt.step()

teacher.eval()
opt = torch.optim.Adam(student.parameters(), lr=3e-3)
for epoch in range(4):
    for b in batches():
        with torch.no_grad():
            soft = F.softmax(teacher(X[b]) / T, dim=1)
        logits = student(X[b])
        loss = kl(F.log_softmax(logits / T, dim=1), soft) * T * T + F.cross_entropy(logits, y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()

with torch.no_grad():
    acc = (student(X[te]).argmax(1) == y[te]).float().mean().item()
print(f"final: acc={acc:.4f}")
