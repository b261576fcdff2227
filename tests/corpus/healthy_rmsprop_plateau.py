# expect: healthy
# RMSprop with ReduceLROnPlateau on validation loss, CrossEntropyLoss(label_smoothing=0.1), Kaiming-initialised MLP on wine.
import torch
import torch.nn as nn
from sklearn.datasets import load_wine


def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)


def main():
    torch.manual_seed(0)
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(X))
    X, y = X[perm], y[perm]
    mean, std = X[:140].mean(0), X[:140].std(0)
    X = (X - mean) / std
    X_tr, y_tr, X_va, y_va = X[:140], y[:140], X[140:], y[140:]

    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    model.apply(init_weights)
    opt = torch.optim.RMSprop(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

    for epoch in range(10):
        model.train()
        for i in range(0, len(X_tr), 16):
            opt.zero_grad()
            loss = criterion(model(X_tr[i:i + 16]), y_tr[i:i + 16])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_logits = model(X_va)
            val_loss = criterion(val_logits, y_va).item()
            val_acc = (val_logits.argmax(1) == y_va).float().mean().item()
        sched.step(val_loss)
        if epoch % 3 == 2:
            print(f"epoch {epoch}: loss {loss.item():.4f} val loss {val_loss:.4f} val acc {val_acc:.3f}")
    print(f"final loss {loss.item():.4f} val accuracy {val_acc:.3f}")


if __name__ == "__main__":
    main()
