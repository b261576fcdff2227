# expect: data
# A tiny character transformer LM (nn.TransformerEncoderLayer, targets shifted by one) whose self-attention gets no causal mask: every position can read the next character, the loss collapses and nothing usable is learned.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
text = "to be or not to be that is the question whether tis nobler in the mind to suffer " * 30
chars = sorted(set(text))
data = torch.tensor([chars.index(c) for c in text])
V, T = len(chars), 16


class CharTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(V, 32)
        self.pos = nn.Embedding(T, 32)
        self.block = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.lm_head = nn.Linear(32, V)

    def forward(self, idx):
        h = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        return self.lm_head(self.block(h))


model = CharTransformer()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
for step in range(60):
    ix = torch.randint(0, len(data) - T - 1, (16,))
    xb = torch.stack([data[i:i + T] for i in ix])
    yb = torch.stack([data[i + 1:i + T + 1] for i in ix])
    logits = model(xb)
    loss = F.cross_entropy(logits.view(-1, V), yb.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if step % 20 == 0:
        print(step, loss.item())
