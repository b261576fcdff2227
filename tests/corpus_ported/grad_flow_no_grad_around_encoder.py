# expect: grad-flow
# half: holdout
# source: TrainCheck / Stack Overflow "embedding weights do not change" (a torch.no_grad() block left in forward() from feature-extraction code)
# fault: forward() runs the embedding+encoder under torch.no_grad(), so only the output layer learns and the random embeddings stay random.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
VOCAB, T = 50, 12


class BagClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 4)
        self.enc = nn.Linear(4, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, tokens):
        with torch.no_grad():
            h = torch.tanh(self.enc(self.emb(tokens))).mean(1)
        return self.out(h)


def main():
    torch.manual_seed(SEED)
    tokens = torch.randint(0, VOCAB, (1500, T))
    # positive when more "good" tokens (id < 25) than "bad" ones
    y = ((tokens < 25).sum(1) > T // 2).long()
    model = BagClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(6):
        perm = torch.randperm(1200)
        for i in range(0, 1200, 60):
            b = perm[i:i + 60]
            loss = F.cross_entropy(model(tokens[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(tokens[1200:]).argmax(1) == y[1200:]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
