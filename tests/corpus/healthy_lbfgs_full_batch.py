# expect: healthy
# Full-batch logistic regression with torch.optim.LBFGS and a closure (several forward/backward passes per step), one optimizer for the whole run.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(600, 10)
w = torch.randn(10)
y = ((X @ w + 0.3 * torch.randn(600)) > 0).float()
model = nn.Linear(10, 1)
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=10, history_size=10)


def closure():
    optimizer.zero_grad()
    loss = nn.functional.binary_cross_entropy_with_logits(model(X).squeeze(1), y)
    loss.backward()
    return loss


for it in range(15):
    loss = optimizer.step(closure)
    print(it, round(loss.item(), 4))
