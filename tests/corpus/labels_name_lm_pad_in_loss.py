# expect: labels
# Character LM over names padded with a pad id to the longest name; F.cross_entropy counts the pad positions.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
names = ["anna", "bob", "christopher", "dan", "eve", "frederick", "gus", "hildegard", "ian", "jo",
         "katherine", "leo", "maximilian", "ned", "olivia", "pat", "quentin", "ray", "sebastian", "tom"] * 10
chars = sorted(set("".join(names)))
PAD, BOS, EOS = 0, 1, 2
stoi = {c: i + 3 for i, c in enumerate(chars)}
V = len(chars) + 3
L = max(len(n) for n in names) + 2
seqs = torch.full((len(names), L), PAD)
for i, name in enumerate(names):
    ids = [BOS] + [stoi[c] for c in name] + [EOS]
    seqs[i, :len(ids)] = torch.tensor(ids)

emb = nn.Embedding(V, 24)
rnn = nn.RNN(24, 64, batch_first=True)
head = nn.Linear(64, V)
params = list(emb.parameters()) + list(rnn.parameters()) + list(head.parameters())
opt = torch.optim.SGD(params, lr=0.5)


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.rnn, self.head = emb, rnn, head

    def forward(self, x):
        return self.head(self.rnn(self.emb(x))[0])


lm = LM()
for step in range(120):
    batch = seqs[torch.randint(0, len(seqs), (32,))]
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits = lm(inputs)
    loss = F.cross_entropy(logits.transpose(1, 2), targets)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 40 == 0:
        print(step, round(loss.item(), 3))
print("final loss", loss.item())
