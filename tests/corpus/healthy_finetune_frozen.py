# expect: healthy
# Fine-tuning: a backbone pre-trained on half of digits is frozen (requires_grad=False); a freshly initialised head is trained on the other half.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits


class Classifier(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def train(model, params, X, y, epochs, lr):
    opt = torch.optim.Adam(params, lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
    return loss.item()


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(y)

    # "pre-training" on the first half: recognise the ten digits
    base = Classifier(10)
    loss = train(base, base.parameters(), X[:900], y[:900], epochs=3, lr=2e-3)
    print(f"pre-training loss {loss:.4f}")

    # transfer to the second half: new head, frozen backbone
    model = Classifier(10)
    model.backbone.load_state_dict(base.backbone.state_dict())
    for p in model.backbone.parameters():
        p.requires_grad = False
    Xf, yf = X[900:], y[900:]
    trainable = [p for p in model.parameters() if p.requires_grad]
    loss = train(model, trainable, Xf[:600], yf[:600], epochs=3, lr=3e-3)
    model.eval()
    with torch.no_grad():
        acc = (model(Xf[600:]).argmax(1) == yf[600:]).float().mean().item()
    print(f"final loss {loss:.4f} held-out accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
