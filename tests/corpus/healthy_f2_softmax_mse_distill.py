# expect: healthy
# Distillation with a squared error between the student's softmax and the teacher's softmax (rows sum to 1 on both sides), plus one-hot MSE.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
N, D, K = 1200, 10, 4
X = torch.randn(N, D)
teacher = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K))
with torch.no_grad():
    soft = F.softmax(3.0 * teacher(X), dim=1)
    hard = F.one_hot(soft.argmax(1), K).float()

student = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K), nn.Softmax(dim=-1))
opt = torch.optim.Adam(student.parameters(), lr=1e-2)
for epoch in range(8):
    perm = torch.randperm(1000)
    for i in range(0, 1000, 50):
        idx = perm[i:i + 50]
        p = student(X[idx])
        loss = F.mse_loss(p, soft[idx]) + 0.5 * nn.MSELoss()(p, hard[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
with torch.no_grad():
    agree = (student(X[1000:]).argmax(1) == soft[1000:].argmax(1)).float().mean().item()
print(f"final loss {loss.item():.4f} agreement with teacher {agree:.3f}")
