# expect: healthy
# Wine MLP (subclass, main(), AdamW) with a softmax GATE over 4 feature groups: the gate weights multiply the group values (attention-style pooling), the Linear never reads the probabilities as features.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_wine


class GatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.groups = nn.Linear(13, 4 * 16)
        self.gate = nn.Linear(13, 4)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        values = F.relu(self.groups(x)).view(-1, 4, 16)
        weights = F.softmax(self.gate(x), dim=1)
        return self.out((weights.unsqueeze(-1) * values).sum(1))


def main():
    torch.manual_seed(0)
    X, y = load_wine(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor(y)
    model = GatedNet()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(40):
        idx = torch.randint(0, len(X), (32,))
        opt.zero_grad()
        loss = F.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
