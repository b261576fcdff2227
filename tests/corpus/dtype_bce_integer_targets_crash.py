# expect: dtype
# A spam classifier with one logit per message and BCEWithLogitsLoss gets int64 0/1 targets: crashes.
import torch
import torch.nn as nn


def make_data(n=400, d=20):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = (x[:, :5].sum(1) > 0).long().unsqueeze(1)       # (n, 1) int64
    return x, y


def train():
    x, y = make_data()
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.BCEWithLogitsLoss()
    for step in range(50):
        i = (step * 40) % 400
        logits = model(x[i:i + 40])
        loss = loss_fn(logits, y[i:i + 40])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


if __name__ == "__main__":
    print(train())
