# expect: data
# Class weights for an imbalanced 3-class task computed as counts / total (the frequency) instead of its inverse: the rare classes weigh least and are never predicted.
import torch
import torch.nn as nn
from sklearn.datasets import make_classification


def main():
    torch.manual_seed(0)
    X, y = make_classification(3000, 20, n_informative=6, n_classes=3, n_clusters_per_class=1,
                               weights=[0.88, 0.08, 0.04], random_state=0)
    x, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    xtr, ytr, xva, yva = x[:2400], y[:2400], x[2400:], y[2400:]
    counts = torch.bincount(ytr).float()
    weights = counts / counts.sum()  # bug: meant counts.sum() / (len(counts) * counts)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    for epoch in range(5):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = model(xva).argmax(1)
        recall = [((pred == k) & (yva == k)).sum().item() / max(1, (yva == k).sum().item()) for k in range(3)]
        print(f"epoch {epoch}: loss {loss.item():.3f} per-class recall {[round(r, 2) for r in recall]}")


if __name__ == "__main__":
    main()
