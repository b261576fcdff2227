"""A data-parallel training script with two common DDP mistakes (run it under nndoctor):

    nndoctor run --nproc 2 examples/buggy_ddp.py
    torchrun --nproc-per-node 2 -m nndoctor run examples/buggy_ddp.py

1. the DistributedSampler is never told the epoch (no sampler.set_epoch(epoch)): every epoch
   visits the data in the same order;
2. BatchNorm (not SyncBatchNorm) with 8 samples per rank: batch statistics from tiny batches.
"""

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def main() -> None:
    dist.init_process_group("gloo")  # "nccl" on GPUs
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    x = torch.randn(512, 20)
    y = (x[:, :5].sum(1) > 0).long()
    train_set = TensorDataset(x, y)
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True)
    train_loader = DataLoader(train_set, batch_size=8, sampler=sampler)
    model = DDP(nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05 * world_size, momentum=0.9)
    for epoch in range(3):
        for xb, yb in train_loader:  # bug: sampler.set_epoch(epoch) is missing
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        if rank == 0:
            print(f"epoch {epoch} done")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
