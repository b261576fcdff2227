# expect: healthy
# A GAN written with classes and a train() function: G and D each have an Adam(betas=(0.5, 0.999)); D ends in a sigmoid and uses nn.BCELoss; both losses hover around log(2)-ish instead of going down, which is what a balanced GAN does.
import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, z=8):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(z, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1)


def real_data(n):
    angle = torch.rand(n) * 6.2832
    return torch.stack([angle.cos(), angle.sin()], 1) * 2 + 0.1 * torch.randn(n, 2)


def train(iters=400, batch=128):
    torch.manual_seed(1)
    netG, netD = Generator(), Discriminator()
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=1e-3, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=1e-3, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    for i in range(iters):
        netD.zero_grad()
        real = real_data(batch)
        label = torch.full((batch,), real_label)
        errD_real = criterion(netD(real), label)
        errD_real.backward()
        noise = torch.randn(batch, 8)
        fake = netG(noise)
        label.fill_(fake_label)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        errD = errD_real + errD_fake
        optD.step()

        netG.zero_grad()
        label.fill_(real_label)
        errG = criterion(netD(fake), label)
        errG.backward()
        optG.step()
        if i % 100 == 0:
            print(f"[{i}] Loss_D {errD.item():.3f} Loss_G {errG.item():.3f}")
    with torch.no_grad():
        radius = netG(torch.randn(1000, 8)).norm(dim=1)
    print("mean radius of samples", radius.mean().item())


if __name__ == "__main__":
    train()
