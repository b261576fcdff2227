# expect: data
# Character LM trained with targets = the input chunk itself (the +1 shift forgotten): loss collapses, it learns to copy.
import torch
import torch.nn as nn

torch.manual_seed(0)
text = ("the quick brown fox jumps over the lazy dog while the small cat sleeps in the warm sun "
        "and the old man reads a long book about ships and the sea ") * 20
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text])
V, T, B = len(chars), 32, 16


class CharLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 48)
        self.lstm = nn.LSTM(48, 96, batch_first=True)
        self.head = nn.Linear(96, V)

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.head(out)


model = CharLSTM()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.CrossEntropyLoss()
for step in range(150):
    starts = torch.randint(0, len(data) - T - 1, (B,))
    x = torch.stack([data[s:s + T] for s in starts])
    y = torch.stack([data[s:s + T] for s in starts])      # should be data[s + 1:s + T + 1]
    logits = model(x)
    loss = criterion(logits.view(-1, V), y.view(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 50 == 0:
        print(step, round(loss.item(), 4))
print("final loss", loss.item())
