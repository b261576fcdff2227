# expect: dtype
# Forward passes under torch.autocast(dtype=torch.float16) with loss.backward()/opt.step() and no GradScaler.
import torch
import torch.nn as nn

device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
X = torch.randn(2048, 32, device=device)
y = (X[:, :4].sum(1) > 0).long()
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2)).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
for epoch in range(2):
    for i in range(0, 2048, 128):
        opt.zero_grad()
        with torch.autocast(device_type=device, dtype=torch.float16):
            loss = nn.functional.cross_entropy(model(X[i:i + 128]), y[i:i + 128])
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
