# expect: healthy
# A word-level LSTM language model in the layout of PyTorch's word_language_model example: a time-major (L, N) corpus, (T, N) inputs, (T, N, V) scores flattened against (T, N) targets.
import torch
import torch.nn as nn
import torch.nn.functional as F

V, N, BPTT = 30, 16, 12


def batchify(stream, n):
    rows = stream.numel() // n
    return stream[:rows * n].view(n, rows).t().contiguous()  # (L, N): column j is one stream


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 32)
        self.lstm = nn.LSTM(32, 64)
        self.head = nn.Linear(64, V)

    def forward(self, x, hidden=None):
        out, hidden = self.lstm(self.emb(x), hidden)
        return self.head(out), hidden


torch.manual_seed(0)
stream = torch.zeros(6000, dtype=torch.long)
for i in range(1, len(stream)):  # a noisy cycle: mostly predictable next words
    stream[i] = (stream[i - 1] + 1) % V if torch.rand(()) < 0.9 else torch.randint(0, V, ())
data = batchify(stream, N)
model = LM()
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(2):
    hidden = None
    for i in range(0, data.shape[0] - 1 - BPTT, BPTT):
        x, y = data[i:i + BPTT], data[i + 1:i + 1 + BPTT]
        scores, hidden = model(x, hidden)
        hidden = tuple(h.detach() for h in hidden)
        loss = F.cross_entropy(scores.view(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
