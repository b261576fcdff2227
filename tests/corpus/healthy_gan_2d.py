# expect: healthy
# A tiny GAN on 2-D data (a shifted, stretched Gaussian): separate Adam optimizers for G and D, fake.detach() in the D step.
import torch
import torch.nn as nn

torch.manual_seed(0)
mean = torch.tensor([2.0, -1.0])
scale = torch.tensor([[1.0, 0.0], [0.6, 0.5]])


def real_batch(n):
    return mean + torch.randn(n, 2) @ scale.T


G = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
D = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
batch = 64
ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

for it in range(300):
    # discriminator step
    real = real_batch(batch)
    fake = G(torch.randn(batch, 4))
    d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    # generator step
    g_loss = bce(D(fake), ones)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    if it % 100 == 0:
        print(f"iter {it}: d_loss {d_loss.item():.3f} g_loss {g_loss.item():.3f}")

with torch.no_grad():
    samples = G(torch.randn(2000, 4))
    target = real_batch(2000)
    mean_err = (samples.mean(0) - target.mean(0)).norm().item()
    std_err = (samples.std(0) - target.std(0)).abs().max().item()
print(f"final d_loss {d_loss.item():.3f} g_loss {g_loss.item():.3f}; "
      f"mean error {mean_err:.3f}, std error {std_err:.3f} (real mean {mean.tolist()})")
