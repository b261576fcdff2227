# expect: shape
# A token classifier feeding (batch, seq, embed) tensors to nn.TransformerEncoder built without batch_first=True: attention runs across the samples of the batch.
import torch
import torch.nn as nn
import torch.nn.functional as F

V, T = 30, 12


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 32)
        self.pos = nn.Parameter(torch.randn(T, 32) * 0.02)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1)  # bug: sequence-first by default
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 2)

    def forward(self, tokens):
        h = self.encoder(self.emb(tokens) + self.pos)  # (N, T, 32) read as (T', N', 32)
        return self.head(h.mean(1))


def main():
    torch.manual_seed(0)
    x = torch.randint(1, V, (512, T))
    y = ((x == 5).sum(1) > (x == 6).sum(1)).long()
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(3):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            b = perm[i:i + 32]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
