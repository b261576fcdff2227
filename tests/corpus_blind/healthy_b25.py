# expect: healthy
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
VOCAB, LENGTH, D_MODEL = 12, 16, 32


def make_batch(n, gen):
    """Label: which of the tokens 1, 2, 3 occurs most often in the sequence."""
    x = torch.randint(1, VOCAB, (n, LENGTH), generator=gen)
    counts = torch.stack([(x == t).sum(1) for t in (1, 2, 3)], dim=1)
    return x, counts.argmax(1)


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.pos = nn.Parameter(torch.zeros(1, LENGTH, D_MODEL))
        layer = nn.TransformerEncoderLayer(D_MODEL, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1)
        self.head = nn.Linear(D_MODEL, 3)

    def forward(self, tokens):
        h = self.encoder(self.embed(tokens) + self.pos)
        return F.log_softmax(self.head(h.mean(1)), dim=-1)


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    Xte, yte = make_batch(500, gen)
    model = TinyTransformer()
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    for step in range(300):
        xb, yb = make_batch(64, gen)
        loss = criterion(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
