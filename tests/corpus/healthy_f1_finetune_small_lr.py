# expect: healthy
# Fine-tuning with a small rate that is right: a model pre-trained on 1200 digits is fine-tuned end to end with AdamW(lr=1e-5) for 60 steps on the other 597: it is already good, so its loss barely moves and that is right.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits


def run(model, opt, X, y, steps):
    for step in range(steps):
        i = (step * 32) % (len(X) - 32)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
        loss.backward()
        opt.step()
    return loss.item()


def main():
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    pre = run(model, torch.optim.Adam(model.parameters(), lr=3e-3), X[:1200], y[:1200], 300)
    print(f"pre-training loss {pre:.3f}")
    ft = run(model, torch.optim.AdamW(model.parameters(), lr=1e-5), X[1200:], y[1200:], 60)
    print(f"fine-tuning loss {ft:.3f}")


if __name__ == "__main__":
    main()
