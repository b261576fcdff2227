# expect: healthy
# Linear warm-up then cosine annealing with warm restarts (SequentialLR, stepped per batch), SGD with Nesterov momentum on a conv net.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
X = (X - X.mean()) / X.std()
Y = torch.tensor(d.target)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=64, shuffle=True)

net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 16, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=30)
restarts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=40, T_mult=2, eta_min=1e-4)
sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, restarts], milestones=[30])
crit = nn.CrossEntropyLoss()
for epoch in range(6):
    for xb, yb in loader:
        opt.zero_grad()
        loss = crit(net(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
    print(epoch, round(loss.item(), 4), sched.get_last_lr()[0])
