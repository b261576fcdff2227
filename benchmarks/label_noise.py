"""False alarms and detections of the run-side label-noise estimate (``labels.noisy``).

Each dataset is used clean and with a share of its labels flipped uniformly to another
class; :func:`nndoctor.monitor.checks.data.noise.estimate_noise` judges a sample of
(input, label) pairs the way ``nndoctor run`` does at the end of a run. A clean dataset
called noisy is a false alarm (hard, overlapping classes are the risk); the warning of
the real check also needs memorisation or a rising evaluation loss, so these figures are
an upper bound of its false alarms.

    python benchmarks/label_noise.py              # all datasets, noise 0, 0.2, 0.35
    python benchmarks/label_noise.py --n 1000 --rates 0 0.3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nndoctor.monitor.checks.data.noise import estimate_noise

__all__ = ["datasets", "main"]


def datasets(n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_breast_cancer, load_digits, make_blobs, make_classification, make_moons

    out = []
    for k in (2, 3, 4):
        for sep in (0.3, 0.5, 0.8, 1.2, 2.0):
            x, y = make_classification(n_samples=n, n_features=12, n_informative=6, n_redundant=2, n_classes=k,
                                       n_clusters_per_class=2, class_sep=sep, flip_y=0,
                                       random_state=int(sep * 10) + 100 * k)
            out.append((f"make_classification k={k} class_sep={sep}", x, y))
    x, y = make_moons(n_samples=n, noise=0.35, random_state=0)
    out.append(("make_moons noise=0.35 (overlap)", x, y))
    x, y = make_blobs(n_samples=n, centers=5, n_features=8, cluster_std=3.0, random_state=0)
    out.append(("make_blobs 5 centres std=3 (overlap)", x, y))
    d = load_digits()
    out.append(("digits", d.data[:n], d.target[:n]))
    b = load_breast_cancer()
    out.append(("breast_cancer", b.data, b.target))
    return out


def _flip(y: np.ndarray, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    y = y.copy()
    m = rng.random(len(y)) < rate
    y[m] = (y[m] + rng.integers(1, k, int(m.sum()))) % k
    return y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.35])
    args = ap.parse_args(argv)
    called: dict[float, list[bool]] = {r: [] for r in args.rates}
    for name, x, y in datasets(args.n):
        for rate in args.rates:
            t = time.time()
            yn = _flip(y, rate, seed=1) if rate else y
            est = estimate_noise(x, yn)
            if est is None:
                print(f"{name:42s} noise {rate:.2f}: too few examples")
                continue
            called[rate].append(est.noisy)
            print(f"{name:42s} noise {rate:.2f}: called {'NOISY' if est.noisy else 'clean'} | confident learning "
                  f"{est.cl_rate:.2f}, confident disagreement {est.consensus:.2f} (>= {est.lower:.2f}, "
                  f"{est.consensus_share:.0%} of examples) | {time.time() - t:.1f}s", flush=True)
    for rate, calls in called.items():
        what = "false alarms" if rate == 0 else "detected"
        print(f"noise {rate:.2f}: {what} {sum(calls)}/{len(calls)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
