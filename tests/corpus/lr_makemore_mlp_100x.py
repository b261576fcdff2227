# expect: lr
# A makemore-style character MLP (embedding -> Linear -> tanh -> Linear over 3 previous characters, AdamW, betas 0.9/0.99) run with lr=5e-2, 100x makemore's 5e-4: tanh saturates after the first updates and the loss jumps up.
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

random.seed(0)
torch.manual_seed(0)
SYL = ["ka", "ri", "an", "mo", "el", "la", "sa", "to", "mi", "na", "jo", "be", "ra", "ly", "de", "on"]
words = ["".join(random.choice(SYL) for _ in range(random.randint(1, 4))) for _ in range(3000)]
chars = sorted(set("".join(words)))
stoi = {c: i + 1 for i, c in enumerate(chars)}
vocab = len(chars) + 1
block = 3


def dataset(ws):
    xs, ys = [], []
    for w in ws:
        ctx = [0] * block
        for ch in w + ".":
            ix = stoi.get(ch, 0)
            xs.append(ctx)
            ys.append(ix)
            ctx = ctx[1:] + [ix]
    return torch.tensor(xs), torch.tensor(ys)


class MLP(nn.Module):
    def __init__(self, n_embd=64, n_embd2=64):
        super().__init__()
        self.wte = nn.Embedding(vocab + 1, n_embd)
        self.mlp = nn.Sequential(nn.Linear(block * n_embd, n_embd2), nn.Tanh(), nn.Linear(n_embd2, vocab))

    def forward(self, idx, targets=None):
        emb = self.wte(idx).view(idx.shape[0], -1)
        logits = self.mlp(emb)
        loss = None if targets is None else F.cross_entropy(logits, targets, ignore_index=-1)
        return logits, loss


X, Y = dataset(words)
model = MLP()
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-2, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)
for step in range(300):
    ix = torch.randint(0, len(X), (32,))
    logits, loss = model(X[ix], Y[ix])
    model.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.4f}")
