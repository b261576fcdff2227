# expect: healthy
# A tiny character LSTM language model (loss summed per sequence) with Adam and clip_grad_norm_(..., 5.0), the usual RNN-LM recipe: the clip fires on the early steps only.
import torch
import torch.nn as nn

torch.manual_seed(0)
text = ("the quick brown fox jumps over the lazy dog and the cat sat on the mat " * 40)
chars = sorted(set(text))
ids = torch.tensor([chars.index(c) for c in text])
V, T, B = len(chars), 32, 16


class CharLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 32)
        self.lstm = nn.LSTM(32, 64, batch_first=True)
        self.head = nn.Linear(64, V)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.head(h)


model = CharLM()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
clipped = 0
for step in range(150):
    starts = torch.randint(0, len(ids) - T - 1, (B,))
    xb = torch.stack([ids[s:s + T] for s in starts])
    yb = torch.stack([ids[s + 1:s + T + 1] for s in starts])
    logits = model(xb)
    loss = nn.functional.cross_entropy(logits.reshape(-1, V), yb.reshape(-1), reduction="sum") / B  # per sequence
    optimizer.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    clipped += int(norm > 5.0)
    optimizer.step()
    if step % 50 == 0:
        print(step, round(loss.item() / T, 3), round(float(norm), 3))
print("final loss per token", round(loss.item() / T, 3), "clipped steps", clipped)
