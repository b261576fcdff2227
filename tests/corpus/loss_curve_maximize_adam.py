# expect: loss-curve
# An autoencoder trained with Adam(maximize=True), copied from a GAN recipe: it maximises the reconstruction loss.
import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    torch.manual_seed(0)
    data = torch.rand(1024, 20)
    encoder = nn.Sequential(nn.Linear(20, 8), nn.ReLU())
    decoder = nn.Sequential(nn.Linear(8, 20), nn.Sigmoid())
    model = nn.Sequential(encoder, decoder)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, maximize=True)
    for epoch in range(8):
        for i in range(0, 1024, 32):
            batch = data[i:i + 32]
            recon = model(batch)
            loss = F.mse_loss(recon, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch} reconstruction {loss.item():.4f}")


if __name__ == "__main__":
    main()
