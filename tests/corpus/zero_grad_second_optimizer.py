# expect: zero-grad
# An encoder and a decoder with separate optimizers; only the encoder's optimizer is zeroed, the decoder's gradients accumulate.
# args: --max-steps 60
import torch
import torch.nn as nn

torch.manual_seed(0)
data = torch.randn(1000, 20)

encoder = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
decoder = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 20))
opt_enc = torch.optim.Adam(encoder.parameters(), lr=1e-3)
opt_dec = torch.optim.Adam(decoder.parameters(), lr=1e-3)


def train_epoch(epoch):
    total = 0.0
    for i in range(0, len(data), 50):
        x = data[i:i + 50]
        recon = decoder(encoder(x))
        loss = ((recon - x) ** 2).mean()
        opt_enc.zero_grad()
        loss.backward()
        opt_enc.step()
        opt_dec.step()
        total += loss.item()
    print(f"epoch {epoch}: {total / 20:.4f}")


for epoch in range(4):
    train_epoch(epoch)
