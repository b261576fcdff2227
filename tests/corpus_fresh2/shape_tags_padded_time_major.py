# expect: shape
# half: holdout
# source: forum questions on pad_sequence (batch_first=False by default returns (T, N)); tags padded time-major while the tokens are batch-major, both flattened with reshape(-1)
# fault: the collate function pads the tokens with batch_first=True but the tags with the default (time-major, (T, N)); logits.reshape(-1, C) and tags.reshape(-1) have the same length, so no error is raised, but each token is scored against another token's tag.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
VOCAB, TAGS = 30, 5


def make_sentence(g):
    n = int(torch.randint(6, 13, (1,), generator=g))
    tokens = torch.randint(1, VOCAB, (n,), generator=g)
    return tokens, tokens % TAGS                       # the tag is a function of the token


def collate(sentences):
    tokens = pad_sequence([s for s, _ in sentences], batch_first=True, padding_value=0)
    tags = pad_sequence([t for _, t in sentences], padding_value=-100)
    return tokens, tags


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32, padding_idx=0)
        self.gru = nn.GRU(32, 32, batch_first=True)
        self.out = nn.Linear(32, TAGS)

    def forward(self, tokens):
        h, _ = self.gru(self.emb(tokens))
        return self.out(h)


torch.manual_seed(SEED)
g = torch.Generator().manual_seed(SEED)
train = [make_sentence(g) for _ in range(640)]
test = [make_sentence(g) for _ in range(200)]
model = Tagger()
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(4):
    order = torch.randperm(len(train)).tolist()
    for i in range(0, len(train), 32):
        tokens, tags = collate([train[j] for j in order[i:i + 32]])
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, TAGS), tags.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()

correct = total = 0
with torch.no_grad():
    for tokens, tags in test:
        pred = model(tokens.unsqueeze(0))[0].argmax(-1)
        correct += (pred == tags).sum().item()
        total += len(tags)
print(f"final: acc={correct / total:.4f}")
