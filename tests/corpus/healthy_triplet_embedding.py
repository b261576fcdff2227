# expect: healthy
# Metric learning: an embedding net trained with nn.TripletMarginLoss (anchor, positive of the same class, random negative of another), SGD with momentum.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32) / 16.0
Y = torch.tensor(d.target)
by_class = [torch.nonzero(Y == c).flatten() for c in range(10)]

class EmbeddingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))

    def forward(self, x):
        return self.net(x)

net = EmbeddingNet()
criterion = nn.TripletMarginLoss(margin=1.0)
optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

def sample_triplets(n):
    a = torch.randint(0, len(X), (n,))
    ya = Y[a]
    p = torch.stack([by_class[c][torch.randint(0, len(by_class[c]), (1,))][0] for c in ya.tolist()])
    yn = (ya + torch.randint(1, 10, (n,))) % 10
    neg = torch.stack([by_class[c][torch.randint(0, len(by_class[c]), (1,))][0] for c in yn.tolist()])
    return X[a], X[p], X[neg]

for step in range(200):
    a, p, n = sample_triplets(64)
    loss = criterion(net(a), net(p), net(n))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(step, loss.item())
