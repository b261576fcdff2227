"""Regenerate nndoctor's table of known results on built-in reference tasks.

Each task is a scikit-learn built-in (no download) or generated dataset with a fixed
75/25 split (``random_state=0``), inputs standardised on the training part. Each model
is trained with batch size 32 for a fixed number of epochs on 3 seeds and scored on the
test part: accuracy and cross-entropy (classification) or MSE on standardised targets
(regression). The models are the ones ``nndoctor baseline`` trains: the constant
predictor, a linear model (Adam 1e-3) and the guide's start-simple model (Adam 3e-4),
plus the start-simple model at Adam 1e-3. Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/known_results.py

It rewrites ``nndoctor/start/known_results.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from nndoctor.start.baseline import baseline, describe  # noqa: E402

OUT = os.path.normpath(os.path.join(ROOT, "nndoctor", "start", "known_results.json"))
SEEDS = (0, 1, 2)


def _load(name: str):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name == "friedman1":
        x, y = datasets.make_friedman1(n_samples=2000, noise=0.5, random_state=0)
    else:
        d = getattr(datasets, f"load_{name}")()
        x, y = d.data, d.target
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0)
    xtr, xte = torch.tensor(xtr, dtype=torch.float32), torch.tensor(xte, dtype=torch.float32)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    if name in ("diabetes", "friedman1"):
        ytr, yte = torch.tensor(ytr, dtype=torch.float32), torch.tensor(yte, dtype=torch.float32)
        m, s = ytr.mean(), ytr.std()
        return xtr, (ytr - m) / s, xte, (yte - m) / s
    return xtr, torch.tensor(ytr), xte, torch.tensor(yte)


TASKS = {
    # name: (dataset, input view, epochs)
    "digits (8x8 images, 10 classes)": ("digits", "images", 30),
    "digits (64 features, 10 classes)": ("digits", "tabular", 30),
    "iris (4 features, 3 classes)": ("iris", "tabular", 100),
    "wine (13 features, 3 classes)": ("wine", "tabular", 100),
    "breast_cancer (30 features, 2 classes)": ("breast_cancer", "tabular", 50),
    "diabetes (10 features, regression)": ("diabetes", "tabular", 100),
    "friedman1 (10 features, regression)": ("friedman1", "tabular", 30),
}


def _score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, reg: bool) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        out = model(x)
    if reg:
        return {"mse": float(nn.functional.mse_loss(out.squeeze(-1), y))}
    return {"accuracy": float((out.argmax(-1) == y).float().mean()),
            "cross_entropy": float(nn.functional.cross_entropy(out, y))}


def _fit(model: nn.Module, lr: float, x: torch.Tensor, y: torch.Tensor, epochs: int, reg: bool, seed: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(32):
            out = model(x[idx])
            loss = nn.functional.mse_loss(out.squeeze(-1), y[idx]) if reg else nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def main() -> int:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = []
    for task, (name, view, epochs) in TASKS.items():
        xtr, ytr, xte, yte = _load(name)
        if view == "images":
            xtr, xte = xtr.reshape(-1, 1, 8, 8), xte.reshape(-1, 1, 8, 8)
        reg = ytr.is_floating_point()
        outputs = 1 if reg else int(ytr.max()) + 1
        if reg:
            const = {"mse": float(((yte - ytr.mean()) ** 2).mean())}
        else:
            prior = torch.bincount(ytr, minlength=outputs).float() / len(ytr)
            const = {"accuracy": float((yte == prior.argmax()).float().mean()),
                     "cross_entropy": float(nn.functional.cross_entropy(prior.log().expand(len(yte), -1), yte))}
        const = {k: round(v, 4) for k, v in const.items()}
        rows.append({"task": task, "model": "constant (majority class / mean)", "epochs": 0, **const})
        configs = [("linear", 1e-3), ("start-simple", 3e-4), ("start-simple", 1e-3)]
        for kind, lr in configs:
            scores = []
            for seed in SEEDS:
                torch.manual_seed(seed)
                if kind == "linear":
                    model: nn.Module = nn.Sequential(nn.Flatten(), nn.Linear(xtr[0].numel(), outputs))
                    desc = "linear / logistic regression"
                else:
                    model = baseline(xtr[:2], outputs, seed=seed)
                    desc = describe(model).rsplit(", ", 1)[0]
                _fit(model, lr, xtr, ytr, epochs, reg, seed)
                scores.append(_score(model, xte, yte, reg))
            agg = {k: round(statistics.mean(s[k] for s in scores), 4) for k in scores[0]}
            rows.append({"task": task, "model": f"{desc}, Adam {lr:g}", "epochs": epochs, **agg})
            print(f"{task:<42} {rows[-1]['model']:<48} {agg}", flush=True)
    table = {"generated_by": "benchmarks/known_results.py", "torch": torch.__version__,
             "python": platform.python_version(), "seeds": list(SEEDS), "split": "75/25, random_state=0",
             "batch_size": 32, "rows": rows}
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(table, fh, indent=1)
        fh.write("\n")
    print(f"wrote {OUT} ({len(rows)} rows, {time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
