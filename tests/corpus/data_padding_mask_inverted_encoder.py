# expect: data
# A Transformer classifier over padded token sequences given a Hugging Face-style attention_mask (1 = real token) as src_key_padding_mask, which PyTorch reads as True = ignore: attention sees only the padding.
import torch
import torch.nn as nn
import torch.nn.functional as F

V, T, PAD = 32, 16, 0


def make_data(n, g):
    lengths = torch.randint(4, T, (n,), generator=g)
    tokens = torch.randint(1, V, (n, T), generator=g)
    real = torch.arange(T)[None, :] < lengths[:, None]
    tokens = torch.where(real, tokens, torch.full_like(tokens, PAD))
    labels = ((tokens == 7) | (tokens == 8)).any(1).long()
    return tokens, real.long(), labels


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 32, padding_idx=PAD)
        self.pos = nn.Parameter(torch.randn(T, 32) * 0.02)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(32, 2)

    def forward(self, tokens, attention_mask):
        h = self.encoder(self.emb(tokens) + self.pos, src_key_padding_mask=attention_mask.bool())  # bug
        m = attention_mask.unsqueeze(-1).float()
        return self.head((h * m).sum(1) / m.sum(1))


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, mask, y = make_data(256, g)
    model = Classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(4):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            b = perm[i:i + 32]
            loss = F.cross_entropy(model(x[b], mask[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
