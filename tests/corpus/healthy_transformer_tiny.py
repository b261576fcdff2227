# expect: healthy
# A tiny Transformer encoder (nn.TransformerEncoderLayer, learned positions, [CLS] pooling) classifying token sequences.
import torch
import torch.nn as nn

VOCAB, SEQ, D = 30, 10, 32
torch.manual_seed(0)


def make_batch(n):
    """Label 1 when token 7 appears before token 9 in the sequence, else 0."""
    x = torch.randint(10, VOCAB, (n, SEQ))
    a = torch.randint(1, SEQ, (n,))
    b = torch.randint(1, SEQ, (n,))
    b = torch.where(a == b, (b % (SEQ - 1)) + 1, b)
    x[torch.arange(n), a] = 7
    x[torch.arange(n), b] = 9
    x[:, 0] = 1                               # [CLS]
    return x, (a < b).long()


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(torch.zeros(1, SEQ, D))
        layer = nn.TransformerEncoderLayer(D, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.head = nn.Linear(D, 2)

    def forward(self, ids):
        h = self.encoder(self.tok(ids) + self.pos)
        return self.head(h[:, 0])


model = TinyTransformer()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
x_val, y_val = make_batch(512)

for step in range(160):
    xb, yb = make_batch(64)
    loss = loss_fn(model(xb), yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 40 == 39:
        with torch.no_grad():
            acc = (model(x_val).argmax(1) == y_val).float().mean().item()
        print(f"step {step + 1}: loss {loss.item():.4f} val acc {acc:.3f}")

print(f"final loss {loss.item():.4f} val accuracy {acc:.3f}")
