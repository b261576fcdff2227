# expect: labels
# Sequence tagger: sentences and tags padded with 0 by pad_sequence, but CrossEntropyLoss() has no ignore_index=0.
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

VOCAB, TAGS, PAD = 40, 4, 0


def make_corpus(n, gen):
    """Word ids 1..39; the tag of a word is its id modulo 3, plus 1 (tags 1..3; 0 is padding)."""
    sentences = []
    for _ in range(n):
        length = int(torch.randint(3, 25, (1,), generator=gen))
        words = torch.randint(1, VOCAB, (length,), generator=gen)
        sentences.append((words, words % 3 + 1))
    return sentences


def collate(batch):
    words = pad_sequence([w for w, _ in batch], batch_first=True, padding_value=PAD)
    tags = pad_sequence([t for _, t in batch], batch_first=True, padding_value=PAD)
    return words, tags


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        self.gru = nn.GRU(32, 48, batch_first=True)
        self.out = nn.Linear(48, TAGS)

    def forward(self, words):
        h, _ = self.gru(self.emb(words))
        return self.out(h)


def main():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    loader = DataLoader(make_corpus(600, gen), batch_size=32, shuffle=True, collate_fn=collate)
    model = Tagger()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(3):
        for words, tags in loader:
            logits = model(words)
            loss = criterion(logits.reshape(-1, TAGS), tags.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        acc = (logits.argmax(-1) == tags).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.3f} token acc {acc:.3f}")


if __name__ == "__main__":
    main()
