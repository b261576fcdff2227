# expect: loss-curve
# A hand-written NLL whose minus sign was dropped: the optimiser minimises the log-likelihood, drives the true
# class's probability to 0, and the loss falls below zero without bound (Adam: no explosion, just down forever).
import torch
import torch.nn as nn


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(10, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        return torch.log_softmax(self.out(torch.relu(self.hidden(x))), dim=1)


torch.manual_seed(0)
X = torch.randn(640, 10)
y = X[:, :4].argmax(dim=1)
model = Classifier()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(4):
    for i in range(0, 640, 32):
        log_probs = model(X[i:i + 32])
        loss = log_probs[torch.arange(32), y[i:i + 32]].mean()     # should be -(...)
        opt.zero_grad()
        loss.backward()
        opt.step()
print(f"final: loss={loss.item():.4g}")
