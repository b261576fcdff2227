# expect: grad-flow
# The loss is rebuilt as torch.tensor(loss.item(), requires_grad=True): backward runs but no weight gets a gradient.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(800, 10)
w_true = torch.randn(10, 1)
y = X @ w_true + 0.1 * torch.randn(800, 1)

model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
history = []
for epoch in range(4):
    for i in range(0, 800, 50):
        pred = model(X[i:i + 50])
        mse = F.mse_loss(pred, y[i:i + 50]).item()
        loss = torch.tensor(mse, requires_grad=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    print(f"epoch {epoch}: loss {sum(history[-16:]) / 16:.4f}")
