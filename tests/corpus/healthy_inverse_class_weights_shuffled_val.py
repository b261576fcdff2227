# expect: healthy
# Imbalanced 3-class task with inverse-frequency class weights and a validation set shuffled with one permutation for inputs and labels (lookalike of frequency weights and of validation labels shuffled apart).
import torch
import torch.nn as nn
from sklearn.datasets import make_classification


def main():
    torch.manual_seed(0)
    X, y = make_classification(3000, 20, n_informative=6, n_classes=3, n_clusters_per_class=1,
                               weights=[0.88, 0.08, 0.04], random_state=0)
    x, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    xtr, ytr, xva, yva = x[:2400], y[:2400], x[2400:], y[2400:]
    p = torch.randperm(len(xva))
    xva, yva = xva[p], yva[p]
    counts = torch.bincount(ytr).float()
    loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (len(counts) * counts))
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(5):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(xva)
            val_loss = loss_fn(out, yva).item()
            pred = out.argmax(1)
        recall = [((pred == k) & (yva == k)).sum().item() / max(1, (yva == k).sum().item()) for k in range(3)]
        print(f"epoch {epoch}: loss {loss.item():.3f} val {val_loss:.3f} recall {[round(r, 2) for r in recall]}")


if __name__ == "__main__":
    main()
