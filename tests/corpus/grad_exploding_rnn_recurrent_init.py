# expect: grad
# A vanilla RNN over 60-step sequences whose recurrent weights are drawn too large (spectral radius ~2.5): gradients explode through time.
import torch
import torch.nn as nn

torch.manual_seed(0)
SEQ, FEAT, HID = 60, 4, 64
X = torch.randn(512, SEQ, FEAT)
y = X[:, -5:, 0].sum(dim=1, keepdim=True)


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(FEAT, HID, batch_first=True)
        self.fc = nn.Linear(HID, 1)
        nn.init.normal_(self.rnn.weight_hh_l0, std=2.5 / HID ** 0.5)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


model = Forecaster()
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
mse = nn.MSELoss()
for epoch in range(1):
    for i in range(0, len(X), 32):
        opt.zero_grad()
        loss = mse(model(X[i:i + 32]), y[i:i + 32])
        loss.backward()
        opt.step()
    print("epoch", epoch, "loss", loss.item())
