# expect: grad-flow
# half: holdout
# source: blind corpus (the description of this script is kept outside the repository)
import os

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
VOCAB, PAD, LENGTH, DIM = 400, 0, 20, 8


def make_reviews(n, rng, polarity):
    tokens = rng.integers(1, VOCAB, size=(n, LENGTH))
    lengths = rng.integers(8, LENGTH + 1, size=n)
    tokens[np.arange(LENGTH)[None, :] >= lengths[:, None]] = PAD
    score = (polarity[tokens] * (tokens != PAD)).sum(1)
    return torch.from_numpy(tokens), torch.from_numpy((score > 0).astype(np.int64))


class BagOfEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        vectors = torch.empty(VOCAB, DIM)
        nn.init.normal_(vectors, std=0.3)
        vectors[PAD] = 0.0
        self.emb = nn.Embedding.from_pretrained(vectors, padding_idx=PAD)
        self.mlp = nn.Sequential(nn.Linear(DIM, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, tokens):
        mask = (tokens != PAD).unsqueeze(-1).float()
        pooled = (self.emb(tokens) * mask).sum(1) / mask.sum(1)
        return self.mlp(pooled)


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    polarity = rng.choice([-1.0, 0.0, 0.0, 1.0], size=VOCAB)
    Xtr, ytr = make_reviews(3000, rng, polarity)
    Xte, yte = make_reviews(800, rng, polarity)
    loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=64, shuffle=True)
    model = BagOfEmbeddings()
    opt = torch.optim.Adam([p for p in model.parameters()], lr=1e-2)
    for epoch in range(12):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
