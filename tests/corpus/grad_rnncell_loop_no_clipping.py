# expect: grad
# A ReLU RNNCell unrolled by hand over 50 steps, its recurrent weight initialised to the identity, trained
# with SGD and no gradient clipping: the gradient grows through time and the first update wrecks the weights.
import torch
import torch.nn as nn


class CellNet(nn.Module):
    def __init__(self, hidden=24):
        super().__init__()
        self.cell = nn.RNNCell(1, hidden, nonlinearity="relu")
        nn.init.eye_(self.cell.weight_hh)
        nn.init.zeros_(self.cell.bias_hh)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):                 # x: (batch, T)
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t:t + 1], h)
        return self.out(h).squeeze(1)


torch.manual_seed(0)
x = torch.rand(256, 50)
y = x.mean(1) * 10
model = CellNet()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
for epoch in range(2):
    for i in range(0, 256, 32):
        loss = nn.functional.mse_loss(model(x[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
