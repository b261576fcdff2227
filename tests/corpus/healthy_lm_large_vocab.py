# expect: healthy
# A word-level language model with a 5,000-token vocabulary (Zipfian text): embedding, GRU, linear head tied to the embedding; initial loss ~ln(5000) = 8.5, Adam, gradient clipping, a short run of 80 steps.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
V, T, B = 5000, 12, 16
probs = 1.0 / torch.arange(1, V + 1).float() ** 1.1
probs /= probs.sum()
succ = torch.randint(0, V, (V,))
corpus = torch.multinomial(probs, 20000, replacement=True)
follow = torch.rand(20000) < 0.5
corpus[1:][follow[1:]] = succ[corpus[:-1][follow[1:]]]


class WordLM(nn.Module):
    def __init__(self, vocab, dim=64):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, vocab)
        self.head.weight = self.embed.weight

    def forward(self, idx):
        h, _ = self.rnn(self.embed(idx))
        return self.head(h)


model = WordLM(V)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
print("uniform loss", math.log(V))
for step in range(80):
    starts = torch.randint(0, len(corpus) - T - 1, (B,))
    xb = torch.stack([corpus[s:s + T] for s in starts])
    yb = torch.stack([corpus[s + 1:s + T + 1] for s in starts])
    logits = model(xb)
    loss = F.cross_entropy(logits.view(-1, V), yb.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step % 50 == 0:
        print(step, loss.item())
