# expect: healthy
# A small GAN with BatchNorm in G and Dropout in D, requires_grad toggling for D, G.eval() for samples, then G.train().
import torch
import torch.nn as nn
import torch.nn.functional as F


def set_requires_grad(net, flag):
    for p in net.parameters():
        p.requires_grad = flag


def main():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
    D = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Dropout(0.2), nn.Linear(32, 1))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ring = torch.linspace(0, 6.283, 8)
    for it in range(100):
        idx = torch.randint(0, 8, (64,))
        real = torch.stack([ring[idx].cos(), ring[idx].sin()], 1) + 0.05 * torch.randn(64, 2)
        fake = G(torch.randn(64, 8))

        set_requires_grad(D, True)
        opt_d.zero_grad()
        d_loss = (F.binary_cross_entropy_with_logits(D(real), torch.ones(64, 1))
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(64, 1)))
        d_loss.backward()
        opt_d.step()

        set_requires_grad(D, False)
        opt_g.zero_grad()
        g_loss = F.binary_cross_entropy_with_logits(D(fake), torch.ones(64, 1))
        g_loss.backward()
        opt_g.step()

        if it % 50 == 0:
            G.eval()
            with torch.no_grad():
                radius = G(torch.randn(256, 8)).norm(dim=1).mean().item()
            G.train()
            print(f"iter {it} d {d_loss.item():.3f} g {g_loss.item():.3f} radius {radius:.2f}")


if __name__ == "__main__":
    main()
