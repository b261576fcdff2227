# expect: healthy
# A time-major GRU (batch_first=False) fed (seq, batch, feature) after a transpose: the layout it expects.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 16)
        self.head = nn.Linear(16, 2)

    def forward(self, x):                 # x: (batch, seq, feature)
        out, h = self.gru(x.transpose(0, 1))
        return self.head(out[-1])


torch.manual_seed(0)
x = torch.randn(384, 10, 4)
y = (x[:, :, 1].mean(1) > 0).long()
model = Model()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(3):
    for i in range(0, 384, 24):
        loss = nn.functional.cross_entropy(model(x[i:i + 24]), y[i:i + 24])
        opt.zero_grad()
        loss.backward()
        opt.step()
