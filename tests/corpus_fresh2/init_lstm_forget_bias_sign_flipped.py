# expect: init
# half: tune
# source: PyTorch forums "Set forget gate bias of LSTM" (discuss.pytorch.org/t/1745: the forget-gate slice is bias[n//4:n//2], usually filled with +1); here the sign is flipped
# fault: the forget-gate slice of both LSTM biases is filled with -2 instead of +2 (gate ~sigmoid(-4) = 0.02 per step): the cell forgets the first symbol within a few steps and the task (recall the first symbol of a 16-step sequence) stays near chance.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
T, H = 16, 24


class Recall(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, H, batch_first=True)
        self.head = nn.Linear(H, 4)
        for name, p in self.lstm.named_parameters():
            if name.startswith("bias"):
                with torch.no_grad():
                    p[H:2 * H].fill_(-2.0)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def batch(n, g):
    first = torch.randint(0, 4, (n,), generator=g)
    seq = torch.randint(0, 4, (n, T), generator=g)
    seq[:, 0] = first
    return F.one_hot(seq, 4).float(), first


def main():
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    model = Recall()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(150):
        x, y = batch(64, g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    x, y = batch(512, g)
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
