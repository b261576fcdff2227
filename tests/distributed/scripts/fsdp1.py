"""FSDP1 (FullyShardedDataParallel) on CPU with gloo: each rank holds a shard of the flat parameter.

With ``--orig`` the optimizer holds the original parameters (``use_orig_params=True``, needed by
torch.compile and per-layer parameter groups): plain tensors viewing this rank's shard, empty on
the ranks that hold none of them. ``--wrap`` makes every Linear its own FSDP unit. Bug:
same-data (no sampler: every rank trains on the same batches).
"""

import argparse
import functools

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", default="")
    parser.add_argument("--orig", action="store_true")
    parser.add_argument("--wrap", action="store_true")
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(1234)
    model = Net()
    policy = functools.partial(size_based_auto_wrap_policy, min_num_params=100) if args.wrap else None
    model = FSDP(model, device_id=torch.device("cpu"), use_orig_params=args.orig, auto_wrap_policy=policy)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0 if args.bug == "same-data" else rank + 1)
    for step in range(40):
        x = torch.randn(32, 8, generator=g)
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if rank == 0 and step % 10 == 9:
            print(f"step {step + 1} loss {loss.item():.4f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
