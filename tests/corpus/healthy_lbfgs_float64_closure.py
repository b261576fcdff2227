# expect: healthy
# Full-batch LBFGS in double precision on purpose (a smooth 1-D curve fit), with the closure LBFGS needs and strong Wolfe line search.
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
x = torch.linspace(-3, 3, 400).unsqueeze(1)
y = torch.sin(2 * x) * torch.exp(-0.2 * x ** 2)
model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20, history_size=50,
                              line_search_fn="strong_wolfe")


def closure():
    optimizer.zero_grad()
    loss = torch.mean((model(x) - y) ** 2)
    loss.backward()
    return loss


for i in range(25):
    loss = optimizer.step(closure)
    if i % 5 == 0:
        print(f"iter {i} mse {loss.item():.2e}")
