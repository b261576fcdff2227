# expect: healthy
# Logistic regression trained with a hand-written SGD update (no torch.optim), zeroing grads by hand.
import torch
from sklearn.datasets import load_iris

torch.manual_seed(0)
X, y = load_iris(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(y)
W = torch.zeros(4, 3, requires_grad=True)
b = torch.zeros(3, requires_grad=True)
lr = 0.5
for epoch in range(100):
    logits = X @ W + b
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    with torch.no_grad():
        W -= lr * W.grad
        b -= lr * b.grad
        W.grad.zero_()
        b.grad.zero_()
    if epoch % 25 == 0:
        print(f"epoch {epoch} loss {loss.item():.4f}")
acc = ((X @ W + b).argmax(1) == y).float().mean().item()
print(f"final loss {loss.item():.4f} accuracy {acc:.3f}")
