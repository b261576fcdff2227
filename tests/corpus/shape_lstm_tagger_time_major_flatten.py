# expect: shape
# A part-of-speech-style LSTM tagger: nn.LSTM is sequence-first, so the (T, N, tags) scores are flattened against (N, T) tags and every score meets the tag of another token.
import torch
import torch.nn as nn
import torch.nn.functional as F

V, TAGS, T = 40, 6, 12


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 32)
        self.lstm = nn.LSTM(32, 32)  # sequence-first: expects (T, N, E)
        self.head = nn.Linear(32, TAGS)

    def forward(self, tokens):
        h, _ = self.lstm(self.emb(tokens).transpose(0, 1))  # (T, N, 32)
        return self.head(h)  # (T, N, TAGS): never transposed back


torch.manual_seed(0)
words = torch.randint(0, V, (640, T))
tags = (words * 7 + 3) % TAGS  # each word has one tag
x_train, y_train = words[:512], tags[:512]
model = Tagger()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(4):
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 32):
        b = perm[i:i + 32]
        xb, yb = x_train[b], y_train[b]
        scores = model(xb)
        loss = F.cross_entropy(scores.reshape(-1, TAGS), yb.reshape(-1))  # bug: (T*N) vs (N*T) order
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
