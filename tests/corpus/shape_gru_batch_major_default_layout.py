# expect: shape
# A GRU built with the default batch_first=False is fed (batch, seq, feature) batches from a DataLoader:
# it recurs across the samples of the batch and h_n[-1] mixes the batch.
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def main():
    torch.manual_seed(0)
    x = torch.randn(384, 10, 4)
    y = (x[:, :, 1].mean(1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=24, shuffle=True)
    gru = nn.GRU(4, 16)
    head = nn.Linear(16, 2)
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    for epoch in range(3):
        for xb, yb in loader:
            out, h = gru(xb)
            loss = nn.functional.cross_entropy(head(out[:, -1]), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()


if __name__ == "__main__":
    main()
