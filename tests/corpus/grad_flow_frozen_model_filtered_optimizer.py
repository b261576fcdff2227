# expect: grad-flow
# model.requires_grad_(False) on the whole nn.Sequential, then an optimizer over the trainable parameters only (none left): the optimizer cannot even be built.
import torch
import torch.nn as nn

torch.manual_seed(1)
X = torch.randn(1024, 12)
y = (X[:, :3].sum(1, keepdim=True) > 0).float()

model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 1))
model.requires_grad_(False)  # meant: model[0].requires_grad_(False)
optimizer = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1, momentum=0.9)
criterion = nn.BCEWithLogitsLoss()
for epoch in range(5):
    for i in range(0, len(X), 64):
        optimizer.zero_grad()
        loss = criterion(model(X[i:i + 64]), y[i:i + 64])
        loss.backward()
        optimizer.step()
    print(epoch, loss.item())
