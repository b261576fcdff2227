# expect: healthy
# Mixup: inputs and one-hot labels mixed with a Beta(0.4, 0.4) weight; cross entropy with probability targets (soft labels), AdamW.
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
n, d, k = 1500, 16, 4
centers = torch.randn(k, d) * 1.5
y = torch.randint(0, k, (n,))
x = centers[y] + torch.randn(n, d)
beta = torch.distributions.Beta(0.4, 0.4)


def main():
    model = nn.Sequential(nn.Linear(d, 64), nn.GELU(), nn.Linear(64, k))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
    for epoch in range(4):
        for xb, yb in loader:
            lam = beta.sample()
            perm = torch.randperm(len(xb))
            xm = lam * xb + (1 - lam) * xb[perm]
            onehot = F.one_hot(yb, k).float()
            ym = lam * onehot + (1 - lam) * onehot[perm]
            loss = F.cross_entropy(model(xm), ym)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            acc = (model(x).argmax(1) == y).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.3f} acc {acc:.3f}")


main()
