# expect: healthy
# half: tune
# fixed twin of ../grad_clip_called_before_backward.py: clip_grad_norm_ between backward() and step().
import os

import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)

T, N = 30, 512
x = torch.rand(N, T, 1)
y = x.sum(1) / T * 4.0 - 2.0


class SumRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, 32, nonlinearity="relu", batch_first=True)
        nn.init.eye_(self.rnn.weight_hh_l0)
        nn.init.zeros_(self.rnn.bias_hh_l0)
        self.head = nn.Linear(32, 1)

    def forward(self, seq):
        out, _ = self.rnn(seq)
        return self.head(out[:, -1])


model = SumRNN()
opt = torch.optim.SGD(model.parameters(), lr=0.02)
for step in range(150):
    idx = torch.randint(0, 400, (32,))
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x[idx]), y[idx])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()

with torch.no_grad():
    mse = nn.functional.mse_loss(model(x[400:]), y[400:]).item()
print(f"final: mse={mse:.4f}")
