# expect: healthy
# A hand-written NLL on log_softmax outputs (negated, as it must be) with SGD: the loss falls towards 0 from above.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(640, 10)
y = X[:, :4].argmax(dim=1)
model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 4), nn.LogSoftmax(dim=1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(4):
    for i in range(0, 640, 32):
        log_probs = model(X[i:i + 32])
        loss = -log_probs.gather(1, y[i:i + 32, None]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
print(f"final: loss={loss.item():.4g}")
