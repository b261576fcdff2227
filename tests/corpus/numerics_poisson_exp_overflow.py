# expect: numerics
# Count regression with a hand-written log-link (rate = exp(model(x))) on raw income in dollars: exp overflows to inf and the Poisson loss is inf - inf = NaN.
# args: --max-steps 30
import torch
import torch.nn as nn

torch.manual_seed(0)
n = 2000
income = torch.rand(n, 1) * 90_000 + 10_000  # raw dollars, never scaled
age = torch.randint(18, 80, (n, 1)).float()
X = torch.cat([income, age], dim=1)
purchases = torch.poisson(torch.exp(income / 50_000 + age / 100))

model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    for i in range(0, n, 100):
        xb, yb = X[i:i + 100], purchases[i:i + 100]
        rate = torch.exp(model(xb))
        loss = (rate - yb * torch.log(rate)).mean()  # Poisson negative log-likelihood
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
