"""Finding codes of the ``distributed`` category: data-parallel training gone wrong (diverged replicas,
the same data on every rank, sampler epoch never set, per-rank batch norm on tiny batches, gradients
not averaged)."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="distributed.accumulation-without-no-sync",
        severity="info",
        step="implement & debug",
        title="Gradient accumulation under DDP without no_sync()",
        meaning=(
            "Several backward passes run per optimizer step on a DistributedDataParallel model and every "
            "one of them all-reduces the gradients."
        ),
        why=(
            "Advice: the result is correct, but the gradients cross the network once per backward pass "
            "instead of once per optimizer step, so communication grows with the accumulation count."
        ),
        detection=(
            "On sampled optimizer steps each rank counts the training forwards (grad enabled) of a DDP model"
            " that will all-reduce (require_backward_grad_sync true) or run under no_sync(), and the "
            "backward calls. Info, reported once, when on 2 sampled steps there were at least 2 backward "
            "passes and at least 2 all-reducing forwards and none under no_sync()."
        ),
        fixes=(
            "Run the backward passes before the last one of each accumulation cycle under "
            "'with {location}.no_sync():', so DDP all-reduces the gradients once per optimizer step.",
        ),
        wrong="""
for i, (x, y) in enumerate(loader):
    loss_fn(ddp_model(x), y).backward()          # all-reduces every time
    if (i + 1) % accum == 0:
        opt.step(); opt.zero_grad()
""",
        right="""
for i, (x, y) in enumerate(loader):
    last = (i + 1) % accum == 0
    with contextlib.nullcontext() if last else ddp_model.no_sync():
        loss_fn(ddp_model(x), y).backward()      # all-reduces only on the last one
    if last:
        opt.step(); opt.zero_grad()
""",
    ),
    CodeInfo(
        code="distributed.batchnorm-not-synced",
        severity="warning",
        step="implement & debug",
        title="Batch norm on tiny per-rank batches",
        meaning=(
            "A data-parallel model uses BatchNorm (not SyncBatchNorm) and each rank feeds it a batch of "
            "only a few samples."
        ),
        why=(
            "Each rank normalises with the mean and variance of its own few samples, not of the global "
            "batch: the statistics are noisy, training is unstable and the running statistics used at "
            "evaluation are poor."
        ),
        detection=(
            "Only in a run with a world size of 2 or more. On sampled training forwards (grad enabled) of a "
            "model with BatchNorm layers that are not SyncBatchNorm, each rank records the per-rank batch "
            "size (the first dimension of the first input tensor of 2 or more dimensions). A warning at the "
            "end of the run when at least 2 sampled forwards had a batch of 8 samples or fewer and they are"
            " at least half of the sampled forwards."
        ),
        fixes=(
            "Convert the model's batch norm to SyncBatchNorm before wrapping it in DDP: "
            "model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model).",
            "Or use a larger per-rank batch (> {tiny} samples), or GroupNorm/LayerNorm, which do not depend "
            "on the batch.",
        ),
        wrong="""
model = Net().to(device)                 # has nn.BatchNorm2d, per-rank batch 4
model = DDP(model, device_ids=[local_rank])
""",
        right="""
model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(Net()).to(device)
model = DDP(model, device_ids=[local_rank])
""",
    ),
    CodeInfo(
        code="distributed.gradients-not-averaged",
        severity="warning",
        step="implement & debug",
        title="Gradients summed, or never all-reduced, across ranks",
        meaning=(
            "The gradient the optimizer uses is either the sum of the ranks' gradients (a hand-written "
            "all-reduce without the division by the world size) or each rank's own gradient (no all-reduce"
            " at all)."
        ),
        why=(
            "Summed gradients multiply the effective learning rate by up to the world size; gradients "
            "never all-reduced let each rank train its own model, so the replicas drift apart."
        ),
        detection=(
            "On sampled optimizer steps with exactly one backward call, each rank records the norm of its "
            "own gradient as autograd delivered it (before any all-reduce) and the norm of the gradient the "
            "optimizer uses; the ranks' records are compared after the run (not for sharded FSDP "
            "parameters). Summed: the used gradient is the same on every rank (relative difference <= "
            "1e-6) and longer than 1.1x the mean of the local norms (an average is never longer than 1x). "
            "Never all-reduced: each rank's used gradient equals its own local one (relative difference <= "
            "1e-9) while the local gradients differ across ranks. A warning when one case holds on at least"
            " 2 compared steps (1 if only one was compared) and on more than half of them."
        ),
        fixes=(
            "Let DistributedDataParallel average the gradients (wrap the model in DDP) instead of a "
            "hand-written all-reduce.",
            "After dist.all_reduce(p.grad, op=ReduceOp.SUM) divide by the world size "
            "(p.grad /= dist.get_world_size()), or use ReduceOp.AVG on backends that have it.",
        ),
        wrong="""
loss.backward()
for p in model.parameters():
    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
opt.step()
""",
        right="""
loss.backward()
for p in model.parameters():
    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
    p.grad /= dist.get_world_size()
opt.step()
""",
    ),
    CodeInfo(
        code="distributed.lr-not-scaled",
        severity="info",
        step="tune",
        title="Learning rate not scaled with the global batch",
        meaning=(
            "The run uses several ranks, so the global batch is world size x the per-rank batch, but the "
            "script's learning rate does not depend on the world size."
        ),
        why=(
            "Advice: an lr tuned for one process may be too small for the larger global batch; it is fine "
            "if the lr was tuned for this world size."
        ),
        detection=(
            "Only in a run with a world size of 2 or more. At the end of the run nndoctor parses the script"
            " and reads its lr= keyword arguments and its assignments to ['lr'] (e.g. group['lr'] = ...); "
            "info when at least one is found and none is computed, directly or through assigned names, from"
            " the world size (a name such as world_size, get_world_size, num_replicas, nprocs, num_gpus or "
            "scale_lr)."
        ),
        fixes=(
            "If lr={lr} was tuned for one process, scale it with the global batch (linear rule: "
            "lr * world_size, with a few warm-up steps), or re-tune it for the global batch of {global_batch}.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.1 * dist.get_world_size())   # plus a short warm-up
""",
    ),
    CodeInfo(
        code="distributed.replicas-diverged",
        severity="error",
        step="implement & debug",
        title="The model replicas differ across ranks",
        meaning=(
            "After the same optimizer step the ranks hold different weights, or a buffer that never changes "
            "differs from one rank to another."
        ),
        why=(
            "Data-parallel training assumes one model replicated on every rank: with diverged replicas each "
            "rank trains its own model, and the checkpoint saved by rank 0 is only one of them."
        ),
        detection=(
            "On sampled optimizer steps (the same steps on every rank) each rank records a float64 sum and "
            "sum of squares of the optimizer's parameters after optimizer.step, a sum per tensor, and a sum "
            "per floating-point buffer; the records are compared after the run with the lowest rank's "
            "(not for sharded FSDP parameters). An error when either checksum differs by more than 1e-6 "
            "(relative) on at least 2 compared steps (or on the only one), or when a buffer stayed constant"
            " on every rank over at least 2 compared steps but differs across ranks (never broadcast; running"
            " statistics change and are left out)."
        ),
        fixes=(
            "Wrap the model in DistributedDataParallel (model = DDP(model, device_ids=[local_rank])) after "
            "moving it to its device and before building the optimizer, so gradients are averaged every step.",
            "Remove any rank-dependent change to weights or gradients (code under 'if rank == ...' that "
            "touches parameters or .grad), or do it on every rank.",
            "Start every rank from the same weights: seed before building the model, or load the checkpoint "
            "on every rank (DDP broadcasts rank 0's weights and buffers when it wraps the model).",
        ),
        wrong="""
model = Net().to(device)                      # each rank: its own random init, no DDP
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
        right="""
model = DDP(Net().to(device), device_ids=[local_rank])
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
    ),
    CodeInfo(
        code="distributed.same-data-every-rank",
        severity="warning",
        step="implement & debug",
        title="Every rank trains on the same batches",
        meaning="All ranks saw identical inputs at every sampled step: the data is not sharded across ranks.",
        why=(
            "The ranks repeat each other's work: N processes train as fast as one, on an N times larger "
            "batch of duplicated samples."
        ),
        detection=(
            "On sampled training forwards each rank fingerprints the model's first input tensor (its shape "
            "and 8 evenly spaced values); after the run the fingerprints are compared step by step. A "
            "warning when at least 2 sampled steps are common to all ranks and at every one of them all "
            "ranks had the same fingerprint."
        ),
        fixes=(
            "Give the DataLoader a DistributedSampler (sampler=DistributedSampler(dataset), shuffle "
            "left to the sampler) so each rank reads its own shard.",
            "For an IterableDataset or data made on the fly, shard by rank (e.g. itertools.islice(stream, "
            "rank, None, world_size)) or seed each rank differently.",
        ),
        wrong="""
loader = DataLoader(dataset, batch_size=32, shuffle=True)
""",
        right="""
sampler = DistributedSampler(dataset)
loader = DataLoader(dataset, batch_size=32, sampler=sampler)
""",
    ),
    CodeInfo(
        code="distributed.sampler-epoch-not-set",
        severity="warning",
        step="implement & debug",
        title="DistributedSampler never told the epoch",
        meaning=(
            "A shuffling sampler with set_epoch (DistributedSampler) was read for several epochs, always "
            "with the same epoch number."
        ),
        why=(
            "DistributedSampler seeds its shuffle with the epoch: without set_epoch every epoch reads the "
            "data in the same order."
        ),
        detection=(
            "Each time a DataLoader whose sampler has set_epoch and an integer epoch is iterated, nndoctor "
            "records the sampler's epoch. A warning at the end of the run for a shuffling sampler read in at"
            " least 2 epochs that all had the same epoch number."
        ),
        fixes=(
            "Call {loader_sampler}.set_epoch(epoch) at the start of every epoch, before iterating "
            "{loader}; without it DistributedSampler shuffles every epoch in the same order.",
        ),
        wrong="""
for epoch in range(epochs):
    for x, y in loader:
        ...
""",
        right="""
for epoch in range(epochs):
    loader.sampler.set_epoch(epoch)
    for x, y in loader:
        ...
""",
    ),
)
