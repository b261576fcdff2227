# expect: healthy
# 5-fold cross-validation in main(): for every fold a fresh model AND a fresh Adam optimizer are built (correct), so optimizers are created repeatedly but never over the same parameters.
import torch
import torch.nn as nn


def make_model():
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))


def main():
    torch.manual_seed(0)
    x = torch.randn(1000, 8)
    y = ((x[:, 0] + x[:, 1] * x[:, 2]) > 0).long()
    folds = torch.randperm(1000).chunk(5)
    scores = []
    for k in range(5):
        val_idx = folds[k]
        train_idx = torch.cat([f for j, f in enumerate(folds) if j != k])
        model = make_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for epoch in range(4):
            perm = train_idx[torch.randperm(len(train_idx))]
            for i in range(0, len(perm), 50):
                idx = perm[i:i + 50]
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            scores.append((model(x[val_idx]).argmax(1) == y[val_idx]).float().mean().item())
    print("fold accuracies", [round(s, 3) for s in scores])


if __name__ == "__main__":
    main()
