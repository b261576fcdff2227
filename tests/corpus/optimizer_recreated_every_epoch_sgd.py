# expect: optimizer
# A Sequential regressor at top level: SGD with momentum and a StepLR scheduler are set up once, but the optimizer is rebuilt at the top of every epoch, so the momentum restarts each epoch and the scheduler decays an optimizer nobody steps.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(1024, 10)
y = (X[:, :3].sum(1, keepdim=True) - X[:, 3:5].prod(1, keepdim=True)) + 0.05 * torch.randn(1024, 1)
model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.3)
loss_fn = nn.MSELoss()
for epoch in range(12):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for i in range(0, len(X), 64):
        optimizer.zero_grad()
        loss = loss_fn(model(X[i:i + 64]), y[i:i + 64])
        loss.backward()
        optimizer.step()
    scheduler.step()
    print(epoch, round(loss.item(), 4), scheduler.get_last_lr())
