"""What nndoctor costs per training step (the figure that decides whether users leave it on).

In one process, runs alternate between modes on the same model, data and seed:

* ``bare``     the uninstrumented loop;
* ``watch``    ``nndoctor.watch(model, optimizer)`` with its defaults;
* ``run``      an Observer with discovery, as ``nndoctor run`` uses it;
* ``anomaly``  ``torch.autograd.detect_anomaly()`` (anchor: what users find too slow to leave on);
* ``naive``    a log-everything monitor: per-parameter grad norms and per-module activation
               mean/std with ``.item()`` every step (anchor).

Models: an MLP, a LeNet-like CNN, a small ResNet and an LSTM, on CPU by default. Prints,
per model, the median step time of each mode and its ratio to ``bare``, the mean-time ratio,
which also counts the sampled steps, and the whole-run ratio (enter..exit of the context: the
dense first steps, the sampled steps, the curve reads and the end-of-run analysis, what a user
pays; target for ``watch`` <= 1.03x on runs of >= 1,500 steps, <= 1.10x on 150-step runs),
with the end-of-run time (``end ms``: the context's exit), the sampled steps and what they cost
over the bare median step in all (``smp ms``). Ratios
are paired: each repetition runs every mode back to back, the ratio is taken within the
repetition and the median over repetitions is printed with its interquartile range (a
shared or virtual machine drifts by more than the effect measured here between runs).

    python benchmarks/overhead.py [--steps 150] [--reps 10] [--models mlp,cnn] [--device cpu] [--no-ddp]
    python -m benchmarks.overhead --steps 150,1500 --reps 5 --models mlp100,lstm16 --modes bare,watch
    python -m benchmarks.overhead --steps 15000 --reps 3 --models mlp100,lstm16 --modes bare,watch --no-ddp

(``--steps`` takes a list: one block of rows per run length; the 15,000-step rows take minutes.)
The ``same`` column says whether every run of the mode ended with weights bit-identical to the
bare run of its repetition (same seed and data).

(``mlp100`` and ``lstm16``: the MLP 100-256-256-10 and the LSTM 16->64 of the whole-run figures.)
The last row is a 2-rank DistributedDataParallel run (gloo, CPU) with and without the observer on
every rank (benchmarks/overhead_ddp.py), with whether the weights come out bit-identical.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import time
import warnings
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MODELS", "MODES", "Run", "main", "measure", "measure_run"]


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 4 * 4, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.short(x))


class SmallResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1))


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(1000, 64)
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.out = nn.Linear(128, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.emb(x))
        return self.out(h[:, -1])


class SmallLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(16, 64, batch_first=True)
        self.out = nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        return self.out(h[:, -1])


def _mlp100() -> nn.Module:
    return nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


#: name -> (model factory, input factory(batch generator), number of classes, batch size)
MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[torch.Generator, int], torch.Tensor], int, int]] = {
    "mlp": (_mlp, lambda g, b: torch.randn(b, 1, 28, 28, generator=g), 10, 64),
    "cnn": (LeNet, lambda g, b: torch.randn(b, 1, 28, 28, generator=g), 10, 32),
    "resnet": (SmallResNet, lambda g, b: torch.randn(b, 3, 32, 32, generator=g), 10, 16),
    "lstm": (LSTMClassifier, lambda g, b: torch.randint(0, 1000, (b, 32), generator=g), 5, 16),
    "mlp100": (_mlp100, lambda g, b: torch.randn(b, 100, generator=g), 10, 64),
    "lstm16": (SmallLSTM, lambda g, b: torch.randn(b, 20, 16, generator=g), 5, 32),
}


@contextlib.contextmanager
def _naive(model: nn.Module) -> Iterator[Callable[[], None]]:
    """Log everything every step: activation mean/std per module, grad norm per parameter."""
    stats: dict[str, float] = {}
    handles = []
    for name, mod in model.named_modules():
        def hook(m: nn.Module, inp: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                stats[name + ".mean"] = out.detach().mean().item()
                stats[name + ".std"] = out.detach().std().item()
        handles.append(mod.register_forward_hook(hook))

    def after_backward() -> None:
        for name, p in model.named_parameters():
            if p.grad is not None:
                stats[name + ".grad_norm"] = p.grad.norm().item()

    try:
        yield after_backward
    finally:
        for h in handles:
            h.remove()


def _context(mode: str, model: nn.Module, opt: torch.optim.Optimizer) -> Any:
    if mode == "watch":
        import nndoctor

        return nndoctor.watch(model, opt)
    if mode == "run":
        from nndoctor.monitor import Observer

        return Observer()
    if mode == "anomaly":
        with warnings.catch_warnings():  # "Anomaly Detection has been enabled..."
            warnings.simplefilter("ignore", UserWarning)
            return torch.autograd.detect_anomaly(check_nan=True)
    if mode == "naive":
        return _naive(model)
    return contextlib.nullcontext()


@dataclasses.dataclass
class Run:
    """One measured run: per-step times, the whole run (enter..exit), the exit alone (seconds)."""

    steps: list[float]
    total: float
    end: float
    sampled: int = 0  # steps nndoctor looked at closely (0 for the other modes)
    flags: list[bool] = dataclasses.field(default_factory=list)  # per step: looked at closely
    weights: list[torch.Tensor] = dataclasses.field(default_factory=list)  # the final parameters


def measure_run(name: str, mode: str, steps: int, device: str, seed: int = 0, clock: str = "cpu",
                batches: int = 8) -> Run:
    """``steps`` training steps of model ``name`` under ``mode`` on ``batches`` batches cycled.

    ``clock="cpu"`` counts this thread's CPU time (robust on a shared machine; the CPU loop
    runs in this thread with one torch thread), ``"wall"`` the elapsed time (use it on GPUs).
    """
    now = time.thread_time if clock == "cpu" else time.perf_counter
    make_model, make_input, classes, batch = MODELS[name]
    torch.manual_seed(seed)
    model = make_model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    data = [(make_input(g, batch).to(device), torch.randint(0, classes, (batch,), generator=g).to(device))
            for _ in range(batches)]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times: list[float] = []
    flags: list[bool] = []
    sync()
    start = now()
    ctx = _context(mode, model, opt)
    with ctx as handle:
        after_backward = handle if mode == "naive" else None
        state = getattr(getattr(handle, "observer", handle), "state", None)
        heavy = state is not None  # (the first steps are sampled)
        for i in range(steps):
            x, y = data[i % len(data)]
            sync()
            t0 = now()
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if after_backward is not None:
                after_backward()
            opt.step()
            sync()
            times.append(now() - t0)
            flags.append(heavy)
            heavy = state is not None and bool(state.sampled)  # (whether the next step is)
        sync()
        exit_start = now()
    sync()
    stop = now()
    return Run(times, stop - start, stop - exit_start, sum(flags), flags,
               [p.detach().cpu().clone() for p in model.parameters()])


def measure(name: str, mode: str, steps: int, device: str, seed: int = 0, clock: str = "cpu") -> list[float]:
    """Per-step times (seconds) of ``steps`` training steps of model ``name`` under ``mode``."""
    return measure_run(name, mode, steps, device, seed, clock).steps


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    mid = statistics.median(values)
    if len(values) >= 4:
        q = statistics.quantiles(values, n=4)
        return q[0], mid, q[2]
    return min(values), mid, max(values)


MODES = ("bare", "watch", "run", "anomaly", "naive")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="150", help="training steps per run; a list (150,1500,15000) gives "
                   "one block of rows per length")
    p.add_argument("--reps", type=int, default=10, help="alternating repetitions of every mode")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", type=int, default=8, help="distinct batches, cycled")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (CPU)")
    p.add_argument("--clock", choices=["cpu", "wall"], default=None,
                   help="thread CPU time (default on CPU with one thread) or wall time (default otherwise)")
    p.add_argument("--ddp", action=argparse.BooleanOptionalAction, default=True,
                   help="also the DDP row: 2 ranks (gloo, CPU) watched vs unwatched, benchmarks/overhead_ddp.py")
    ns = p.parse_args(argv)
    torch.set_num_threads(ns.threads)
    clock = ns.clock or ("cpu" if ns.device == "cpu" and ns.threads == 1 else "wall")
    modes = [m for m in ns.modes.split(",") if m]
    if "bare" not in modes:
        modes.insert(0, "bare")
    lengths = [int(n) for n in str(ns.steps).split(",") if n]
    worst = worst_whole = 0.0
    for steps in lengths:
        w, ww = _block(ns, modes, clock, steps)
        worst, worst_whole = max(worst, w), max(worst_whole, ww)
    print(f"worst median ratio of watch(): {worst:.3f}x; worst whole-run ratio: {worst_whole:.3f}x "
          f"(targets: whole run <= 1.03x at >= 1,500 steps, <= 1.10x at 150)")
    if ns.ddp:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if root not in sys.path:  # (run as a script: the worker processes import benchmarks.*)
            sys.path.insert(0, root)
        from benchmarks.overhead_ddp import format_row, measure_ddp

        print(format_row(measure_ddp("mlp", lengths[0], max(2, ns.reps // 2))))
    return 0


def _sampled_ms(run: Run, bare: Run) -> float:
    """What the sampled steps of ``run`` cost over the bare run's median step (ms)."""
    base = statistics.median(bare.steps)
    return sum(t - base for t, f in zip(run.steps, run.flags) if f) * 1e3


def _same(a: Run, b: Run) -> bool:
    return len(a.weights) == len(b.weights) and all(torch.equal(x, y) for x, y in zip(a.weights, b.weights))


def _block(ns: argparse.Namespace, modes: list[str], clock: str, steps: int) -> tuple[float, float]:
    """The rows of one run length; returns watch's worst median and whole-run ratios."""
    print(f"nndoctor overhead: {steps} steps x {ns.reps} alternating reps, {ns.batches} batches cycled, "
          f"device {ns.device}, torch {torch.__version__}, {ns.threads} thread(s), {clock} clock")
    print(f"{'model':8} {'mode':8} {'median ms':>10} {'ratio':>7} {'ratio IQR':>13} {'mean ratio':>10} "
          f"{'whole ratio':>11} {'whole IQR':>13} {'end ms':>8} {'sampled':>7} {'smp ms':>7} {'same':>5}")
    worst = worst_whole = 0.0
    for name in [m for m in ns.models.split(",") if m]:
        for mode in modes:  # warm-up: allocator, kernels, lazy imports (nndoctor's too)
            measure_run(name, mode, 20, ns.device, clock=clock)
        per_mode: dict[str, list[Run]] = {m: [] for m in modes}
        for rep in range(ns.reps):
            order = modes if rep % 2 == 0 else modes[::-1]
            for mode in order:
                per_mode[mode].append(measure_run(name, mode, steps, ns.device, seed=rep, clock=clock,
                                                  batches=ns.batches))
        # paired ratios: each repetition's mode against the bare run of the same repetition (runs
        # of one repetition are adjacent in time, so the machine's slow drifts cancel out)
        bare = per_mode["bare"]
        for mode in modes:
            runs = per_mode[mode]
            ratios = [statistics.median(r.steps) / statistics.median(b.steps) for r, b in zip(runs, bare)]
            mean_ratios = [statistics.fmean(r.steps) / statistics.fmean(b.steps) for r, b in zip(runs, bare)]
            whole = [r.total / b.total for r, b in zip(runs, bare)]
            q0, ratio, q2 = _quartiles(ratios)
            w0, whole_ratio, w2 = _quartiles(whole)
            if mode == "watch":
                worst = max(worst, ratio)
                worst_whole = max(worst_whole, whole_ratio)
            print(f"{name:8} {mode:8} {statistics.median(statistics.median(r.steps) for r in runs) * 1e3:10.3f} "
                  f"{ratio:6.3f}x {q0:6.3f}-{q2:.3f} {statistics.median(mean_ratios):9.3f}x "
                  f"{whole_ratio:10.3f}x {w0:6.3f}-{w2:.3f} {statistics.median(r.end for r in runs) * 1e3:8.1f} "
                  f"{statistics.median(r.sampled for r in runs):7.0f} "
                  f"{statistics.median(_sampled_ms(r, b) for r, b in zip(runs, bare)):7.1f} "
                  f"{'yes' if all(_same(r, b) for r, b in zip(runs, bare)) else 'NO':>5}")
        sys.stdout.flush()
    return worst, worst_whole


if __name__ == "__main__":
    raise SystemExit(main())
