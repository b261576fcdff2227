"""DDP training watched from inside the script with nndoctor.watch() (run it under torchrun);
rank 0 writes the merged report's JSON to --out. Bugs: same-data (no DistributedSampler),
rank0-only (only rank 0 watches)."""

import argparse
import json

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import nndoctor

parser = argparse.ArgumentParser()
parser.add_argument("--bug", default="")
parser.add_argument("--out", required=True)
args = parser.parse_args()
dist.init_process_group("gloo")
rank, world_size = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
x = torch.randn(256, 8)
data = TensorDataset(x, (x[:, 0] > 0).long())
torch.manual_seed(1234)
model = DDP(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)))
opt = torch.optim.Adam(model.parameters(), lr=1e-3 * world_size)
if args.bug == "same-data":
    sampler, loader = None, DataLoader(data, batch_size=16, shuffle=True)
else:
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, seed=0)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
watching = args.bug != "rank0-only" or rank == 0
doctor = nndoctor.watch(model, opt) if watching else None
if doctor is not None:
    doctor.start()
for epoch in range(3):
    if sampler is not None:
        sampler.set_epoch(epoch)
    for xb, yb in loader:
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
if doctor is not None:
    report = doctor.stop()
    with open(f"{args.out}.rank{rank}", "w") as fh:
        json.dump(report.to_dict(), fh)
dist.destroy_process_group()
