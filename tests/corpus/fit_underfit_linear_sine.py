# expect: fit
# A linear model (no hidden layer) fitted to a strongly non-linear sine target: the loss converges far above zero.
import torch
import torch.nn as nn

torch.manual_seed(0)
x = torch.linspace(-3, 3, 2048).unsqueeze(1)
y = torch.sin(3 * x) + 0.05 * torch.randn_like(x)
perm = torch.randperm(2048)
x, y = x[perm], y[perm]

model = nn.Linear(1, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
loss_fn = nn.MSELoss()

for epoch in range(5):
    for i in range(0, 2048, 32):
        opt.zero_grad()
        loss = loss_fn(model(x[i:i + 32]), y[i:i + 32])
        loss.backward()
        opt.step()
    print("epoch", epoch, "mse", loss.item())
