# expect: zero-grad
# model.zero_grad() is called between loss.backward() and optimizer.step(), so every step sees no gradient and nothing learns.
# args: --max-steps 40
import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden)
        self.out = nn.Linear(n_hidden, n_out)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


torch.manual_seed(0)
X = torch.randn(800, 6)
y = (X[:, :2].sum(1) > 0).long()
model = MLP(6, 32, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
criterion = nn.CrossEntropyLoss()

for epoch in range(4):
    for i in range(0, 800, 40):
        output = model(X[i:i + 40])
        loss = criterion(output, y[i:i + 40])
        loss.backward()
        model.zero_grad()
        optimizer.step()
    print(epoch, loss.item())
