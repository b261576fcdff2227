# expect: healthy
# Embedding + Conv1d text classifier over zero-padded variable-length sequences (padding_idx=0, masked mean pooling).
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
VOCAB, MAXLEN, N = 200, 40, 1024
lengths = torch.randint(5, MAXLEN, (N,))
tokens = torch.randint(1, VOCAB, (N, MAXLEN))
mask = torch.arange(MAXLEN)[None, :] < lengths[:, None]
tokens = tokens * mask
labels = ((tokens == 7) | (tokens == 11)).any(dim=1).long()


class TextCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32, padding_idx=0)
        self.conv = nn.Conv1d(32, 64, kernel_size=3, padding=1, bias=False)
        self.fc = nn.Linear(64, 2)

    def forward(self, tok, m):
        x = self.emb(tok).transpose(1, 2)  # (N, C, L)
        h = F.relu(self.conv(x))
        h = (h * m[:, None, :]).amax(dim=2)
        return self.fc(h)


model = TextCNN()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(2):
    for i in range(0, N, 64):
        out = model(tokens[i:i + 64], mask[i:i + 64].float())
        loss = F.cross_entropy(out, labels[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(epoch, round(loss.item(), 4))
