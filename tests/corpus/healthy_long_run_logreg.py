# expect: healthy
# A long run: 3,000 steps of small-batch logistic regression (Adagrad) on a linearly separable-ish problem; the loss flattens out for most of the run once it has converged.
import torch

torch.manual_seed(0)
w_true = torch.randn(10)
X = torch.randn(2000, 10)
y = (X @ w_true + 0.5 * torch.randn(2000) > 0).float()
w = torch.zeros(10, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
opt = torch.optim.Adagrad([w, b], lr=0.1)
for step in range(3000):
    idx = torch.randint(0, 2000, (32,))
    logits = X[idx] @ w + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 1000 == 0:
        print(step, loss.item())
print("accuracy", ((X @ w + b > 0).float() == y).float().mean().item())
