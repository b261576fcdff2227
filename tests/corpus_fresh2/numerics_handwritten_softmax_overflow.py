# expect: numerics
# half: holdout
# source: guides on naive softmax overflow (aicosoft.com/data-science-engineering/why-your-ai-model-is-exploding-a-deep-dive-into-softmax-and-numerical-stability; saipien.org/why-naive-softmax-produces-nans-on-gpus-use-logsumexp-for-numerically-stable-cross-entropy)
# fault: a cosine classifier with temperature 0.005 computes its cross-entropy by hand as exp(z) / exp(z).sum(); once a cosine passes ~0.44 the logit passes 88.7, exp overflows float32 to inf, inf / inf = NaN and the weights turn NaN.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
TEMPERATURE = 0.005


class CosineClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32))
        self.prototypes = nn.Parameter(torch.randn(10, 32))

    def forward(self, x):
        f = F.normalize(self.body(x), dim=1)
        return f @ F.normalize(self.prototypes, dim=1).t() / TEMPERATURE


def main():
    torch.manual_seed(SEED)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X))
    tr, te = perm[:1400], perm[1400:]
    model = CosineClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(12):
        order = tr[torch.randperm(len(tr))]
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            z = model(X[b])
            probs = torch.exp(z) / torch.exp(z).sum(1, keepdim=True)
            loss = -torch.log(probs[torch.arange(len(b)), y[b]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X[te]).argmax(1) == y[te]).float().mean().item()
    print(f"final: acc={acc:.4f}")


if __name__ == "__main__":
    main()
