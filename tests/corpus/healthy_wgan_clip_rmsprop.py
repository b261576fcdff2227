# expect: healthy
# A WGAN (weight clipping, RMSprop for both nets, 5 critic steps per generator step): the critic's loss is a difference of means, negative and not meant to go down to zero.
import torch
import torch.nn as nn

torch.manual_seed(0)
G = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
C = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 1))
opt_g = torch.optim.RMSprop(G.parameters(), lr=5e-4)
opt_c = torch.optim.RMSprop(C.parameters(), lr=5e-4)

for it in range(100):
    for _ in range(5):
        real = 3.0 + 0.5 * torch.randn(64, 1)
        fake = G(torch.randn(64, 2)).detach()
        loss_c = C(fake).mean() - C(real).mean()
        opt_c.zero_grad()
        loss_c.backward()
        opt_c.step()
        for p in C.parameters():
            p.data.clamp_(-0.05, 0.05)
    loss_g = -C(G(torch.randn(64, 2))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    if it % 25 == 0:
        print(it, loss_c.item(), loss_g.item())
print("sample mean", G(torch.randn(500, 2)).mean().item())
