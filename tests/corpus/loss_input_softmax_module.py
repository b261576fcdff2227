# expect: loss-input
# A classifier whose nn.Sequential ends in nn.Softmax, trained with nn.CrossEntropyLoss.
import torch, torch.nn as nn
torch.manual_seed(0)
X = torch.randn(512, 20); y = (X[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2), nn.Softmax(dim=1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
crit = nn.CrossEntropyLoss()
for epoch in range(3):
    for i in range(0, 512, 32):
        opt.zero_grad()
        loss = crit(model(X[i:i+32]), y[i:i+32])
        loss.backward()
        opt.step()
print("final loss", loss.item())
