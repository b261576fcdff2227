# expect: healthy
# Knowledge distillation (Hinton): a wide teacher is trained, then a small student learns from F.kl_div(log_softmax(s/T), softmax(t/T), 'batchmean') * T^2 mixed with hard-label cross entropy.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32) / 16.0
Y = torch.tensor(d.target)
Xtr, Ytr, Xte, Yte = X[:1400], Y[:1400], X[1400:], Y[1400:]

teacher = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
student = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

opt = torch.optim.Adam(teacher.parameters(), lr=1e-3)
for epoch in range(5):
    for i in range(0, len(Xtr), 64):
        loss = F.cross_entropy(teacher(Xtr[i:i + 64]), Ytr[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
teacher.eval()

T, alpha = 4.0, 0.7
kl = nn.KLDivLoss(reduction="batchmean")
opt = torch.optim.Adam(student.parameters(), lr=3e-3)
for epoch in range(8):
    perm = torch.randperm(len(Xtr))
    for i in range(0, len(Xtr), 64):
        idx = perm[i:i + 64]
        xb, yb = Xtr[idx], Ytr[idx]
        with torch.no_grad():
            t_logits = teacher(xb)
        s_logits = student(xb)
        soft = kl(F.log_softmax(s_logits / T, dim=1), F.softmax(t_logits / T, dim=1)) * T * T
        hard = F.cross_entropy(s_logits, yb)
        loss = alpha * soft + (1 - alpha) * hard
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (student(Xte).argmax(1) == Yte).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.3f} student acc {acc:.3f}")
