# expect: healthy
# A tiny attention classifier over padded sequences: masked_fill(-inf) on padding (never a fully padded row) and a clamped log in the loss.
import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyAttention(nn.Module):
    def __init__(self, d=16, n_classes=3):
        super().__init__()
        self.embed = nn.Linear(4, d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.head = nn.Linear(d, n_classes)

    def forward(self, x, pad_mask):
        h = self.embed(x)
        scores = self.q(h) @ self.k(h).transpose(1, 2) / h.shape[-1] ** 0.5
        scores = scores.masked_fill(pad_mask[:, None, :], float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        pooled = (attn @ h).mean(1)
        return self.head(pooled)


def main():
    torch.manual_seed(0)
    n, t = 640, 10
    x = torch.randn(n, t, 4)
    lengths = torch.randint(3, t + 1, (n,))
    pad_mask = torch.arange(t)[None, :] >= lengths[:, None]
    y = (x[:, :, 0].sum(1) > 0).long() + (lengths > 7).long()
    model = TinyAttention()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(4):
        for i in range(0, n, 32):
            probs = torch.softmax(model(x[i:i + 32], pad_mask[i:i + 32]), dim=-1)
            loss = F.nll_loss(torch.log(probs.clamp_min(1e-8)), y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
