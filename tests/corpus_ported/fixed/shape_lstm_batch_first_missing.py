# expect: healthy
# half: tune
# fixed twin of ../shape_lstm_batch_first_missing.py: the LSTM is built with batch_first=True.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
torch.manual_seed(SEED)


def make_data(n, T=12):
    # class = whether the running sum of the signal ends positive
    x = torch.randn(n, T, 3)
    y = (x[:, :, 0].sum(1) > 0).long()
    return x, y


class SeqClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


X_train, y_train = make_data(512)
X_test, y_test = make_data(256)
model = SeqClassifier()
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(6):
    perm = torch.randperm(len(X_train))
    for i in range(0, len(X_train), 32):
        idx = perm[i:i + 32]
        logits = model(X_train[idx])
        loss = F.cross_entropy(logits, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()

model.eval()
with torch.no_grad():
    acc = (model(X_test).argmax(1) == y_test).float().mean().item()
print(f"final: acc={acc:.4f}")
