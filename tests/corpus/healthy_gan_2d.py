# expect: healthy
# A tiny GAN on a 2-D Gaussian mixture: separate Adam optimizers for G and D, fake.detach() in the D step.
import torch
import torch.nn as nn

torch.manual_seed(0)
modes = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])


def real_batch(n):
    return modes[torch.randint(0, 4, (n,))] + 0.2 * torch.randn(n, 2)


G = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
D = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
batch = 64
ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

for it in range(300):
    # discriminator step
    real = real_batch(batch)
    fake = G(torch.randn(batch, 8))
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
    samples = G(torch.randn(1000, 8))
    dist = torch.cdist(samples, modes).min(1).values.mean().item()
print(f"final d_loss {d_loss.item():.3f} g_loss {g_loss.item():.3f}; mean distance of samples to nearest mode {dist:.3f}")
