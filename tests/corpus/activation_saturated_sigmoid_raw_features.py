# expect: activation
# Tabular features in the hundreds fed to sigmoid hidden layers (nn.Module subclass, Adam): the sigmoids sit at 0 or 1.
import torch
import torch.nn as nn

torch.manual_seed(0)
N = 2048
age = torch.randint(18, 90, (N, 1)).float()
income = torch.rand(N, 1) * 900 + 100
score = torch.rand(N, 3) * 400
X = torch.cat([age, income, score], dim=1)
y = ((income[:, 0] > 500) & (age[:, 0] < 50)).float().unsqueeze(1)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(5, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Sigmoid())
        self.out = nn.Linear(32, 1)

    def forward(self, x):
        return self.out(self.hidden(x))


model = Model()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.BCEWithLogitsLoss()
for epoch in range(1):
    for i in range(0, N, 128):
        loss = criterion(model(X[i:i + 128]), y[i:i + 128])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(epoch, loss.item())
