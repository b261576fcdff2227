# expect: healthy
# half: tune
# fixed twin of ../shape_tagger_view_instead_of_permute.py: logits.permute(0, 2, 1) puts the classes on dim 1.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
VOCAB, TAGS, T = 20, 4, 10


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32)
        self.conv = nn.Conv1d(32, 32, 3, padding=1)
        self.out = nn.Linear(32, TAGS)

    def forward(self, tokens):
        h = self.emb(tokens).transpose(1, 2)
        h = torch.relu(self.conv(h)).transpose(1, 2)
        return self.out(h)                      # (N, T, TAGS)


def main():
    torch.manual_seed(SEED)
    tokens = torch.randint(0, VOCAB, (800, T))
    tags = tokens % TAGS                         # each token's tag is a function of the token
    model = Tagger()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for epoch in range(10):
        for i in range(0, 640, 64):
            x, y = tokens[i:i + 64], tags[i:i + 64]
            logits = model(x)
            n = logits.shape[0]
            loss = F.cross_entropy(logits.permute(0, 2, 1), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        pred = model(tokens[640:]).argmax(-1)
        acc = (pred == tags[640:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
