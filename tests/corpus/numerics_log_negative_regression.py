# expect: numerics
# Regression on a log scale: log of a linear output that can be negative; plain SGD keeps updating with finite gradients while the loss is NaN.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.rand(500, 6) * 2
Y = torch.exp(X @ torch.tensor([0.5, -0.3, 0.2, 0.1, 0.0, 0.4])).unsqueeze(1)

model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(4):
    for i in range(0, 500, 25):
        pred = model(X[i:i + 25])
        loss = ((torch.log(pred) - torch.log(Y[i:i + 25])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
print(f"final loss {loss.item():.4f}")
