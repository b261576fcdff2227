"""Data-parallel training without DDP: nn.Sequential, Adam, a top-level loop, gradients averaged by a
hand-written all-reduce. --bug injects one fault: sum (all-reduce without dividing), none (no
all-reduce), rank-seed (each rank starts from other weights), same-data (no sharding), bn-tiny."""

import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

bug = sys.argv[sys.argv.index("--bug") + 1] if "--bug" in sys.argv else ""
dist.init_process_group("gloo")
rank = int(os.environ["RANK"])
world = dist.get_world_size()

g = torch.Generator().manual_seed(7)
inputs = torch.randn(512, 10, generator=g)
targets = inputs @ torch.randn(10, 1, generator=g) + 0.1 * torch.randn(512, 1, generator=g)
if bug != "same-data":  # this rank's shard
    inputs, targets = inputs[rank::world], targets[rank::world]

torch.manual_seed(rank if bug == "rank-seed" else 0)
layers = [nn.Linear(10, 16)] + ([nn.BatchNorm1d(16)] if bug == "bn-tiny" else []) + [nn.Tanh(), nn.Linear(16, 1)]
net = nn.Sequential(*layers)
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
batch = 4 if bug == "bn-tiny" else 32
steps = 0
for epoch in range(4):
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(epoch))
    for start in range(0, len(inputs) - batch + 1, batch):
        idx = order[start:start + batch]
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(inputs[idx]), targets[idx])
        loss.backward()
        if bug != "none":
            for p in net.parameters():
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                if bug != "sum":
                    p.grad /= world
        optimizer.step()
        steps += 1
        if steps >= 40:
            break
if rank == 0:
    print(f"loss {loss.item():.4f}")
dist.destroy_process_group()
