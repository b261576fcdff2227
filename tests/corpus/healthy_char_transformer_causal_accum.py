# expect: healthy
# A tiny character transformer LM with a causal mask (nn.TransformerEncoderLayer, src_mask + is_causal) trained with gradient accumulation done right: loss / 2 per micro-batch, step and zero_grad every 2nd micro-batch.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
text = "to be or not to be that is the question whether tis nobler in the mind to suffer " * 30
chars = sorted(set(text))
data = torch.tensor([chars.index(c) for c in text])
V, T, ACCUM = len(chars), 16, 2


class CharTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(V, 32)
        self.pos = nn.Embedding(T, 32)
        self.block = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.lm_head = nn.Linear(32, V)

    def forward(self, idx):
        t = idx.shape[1]
        h = self.tok(idx) + self.pos(torch.arange(t))
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.lm_head(self.block(h, src_mask=mask, is_causal=True))


model = CharTransformer()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
for micro in range(120):
    ix = torch.randint(0, len(data) - T - 1, (8,))
    xb = torch.stack([data[i:i + T] for i in ix])
    yb = torch.stack([data[i + 1:i + T + 1] for i in ix])
    logits = model(xb)
    loss = F.cross_entropy(logits.view(-1, V), yb.view(-1)) / ACCUM
    loss.backward()
    if (micro + 1) % ACCUM == 0:
        opt.step()
        opt.zero_grad(set_to_none=True)
    if micro % 40 == 0:
        print(micro, loss.item() * ACCUM)
