# expect: healthy
# A makemore-style bigram model: its only parameter, the logits table, starts at zero (nn.Parameter(torch.zeros)); AdamW lr=5e-2. Relative to a zero weight every update looks huge: that says nothing about the learning rate.
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


class Bigram(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros((n, n)))

    def forward(self, idx, targets=None):
        logits = self.logits[idx]
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


xs, ys = [], []
for w in words:
    seq = [0] + [stoi[c] for c in w] + [0]
    xs += seq[:-1]
    ys += seq[1:]
X, Y = torch.tensor(xs), torch.tensor(ys)
model = Bigram(vocab)
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-2, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)
for step in range(300):
    ix = torch.randint(0, len(X), (32,))
    _, loss = model(X[ix], Y[ix])
    model.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.4f}")
