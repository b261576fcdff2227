# expect: healthy
# A bag-of-embeddings text classifier: nn.Embedding on integer token ids (with padding), mean-pooled, Adam.
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, PAD, MAXLEN = 200, 0, 12
torch.manual_seed(0)

# synthetic "sentiment": tokens 1-20 are positive words, 21-40 negative, the rest neutral
def make_sentence():
    length = int(torch.randint(4, MAXLEN + 1, (1,)))
    tokens = torch.randint(41, VOCAB, (length,))
    label = int(torch.randint(0, 2, (1,)))
    n_cue = int(torch.randint(1, 3, (1,)))
    pos = torch.randint(0, length, (n_cue,))
    tokens[pos] = torch.randint(1, 21, (n_cue,)) + (0 if label == 1 else 20)
    padded = torch.full((MAXLEN,), PAD)
    padded[:length] = tokens
    return padded, label


pairs = [make_sentence() for _ in range(1500)]
tokens = torch.stack([p[0] for p in pairs])
labels = torch.tensor([p[1] for p in pairs])


class BagOfEmbeddings(nn.Module):
    def __init__(self, vocab, dim, n_classes):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=PAD)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, ids):
        mask = (ids != PAD).unsqueeze(-1).float()
        summed = (self.emb(ids) * mask).sum(1)
        mean = summed / mask.sum(1).clamp(min=1)
        return self.fc(mean)


model = BagOfEmbeddings(VOCAB, 32, 2)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(5):
    for i in range(0, 1200, 40):
        logits = model(tokens[i:i + 40])
        loss = F.cross_entropy(logits, labels[i:i + 40])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(tokens[1200:]).argmax(1) == labels[1200:]).float().mean().item()
    print(f"epoch {epoch} loss {loss.item():.4f} val acc {acc:.3f}")
print(f"final loss {loss.item():.4f} val accuracy {acc:.3f}")
