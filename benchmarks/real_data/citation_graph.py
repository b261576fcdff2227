"""Write a synthetic citation graph in the Cora format (``cora.content`` + ``cora.cites``).

``python citation_graph.py DIR [--nodes 2708] [--features 1433] [--classes 7] [--edges 5429]``:
graph-network scripts read Cora (the LINQS release: one line per paper ``<id> <0/1 words...>
<label>``, one line per citation ``<cited id> <citing id>``); the repositories that ship it
keep ``cora.content`` (7.8 MB) above the mirror's 4 MiB limit, and the others download it.
This makes a graph of the same size and format with the same kind of structure: each class
prefers its own words (bag-of-words features, ~18 words a paper as in Cora) and ~80% of
citations join papers of the same class, so both the features and the graph carry the label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["make_graph", "main"]

LABELS = ["Case_Based", "Genetic_Algorithms", "Neural_Networks", "Probabilistic_Methods",
          "Reinforcement_Learning", "Rule_Learning", "Theory"]


def make_graph(nodes: int = 2708, features: int = 1433, classes: int = 7, edges: int = 5429,
               words: int = 18, homophily: float = 0.8, seed: int = 0) -> tuple[list[str], list[str]]:
    """The lines of ``cora.content`` and ``cora.cites``."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 1_200_000), size=nodes, replace=False)
    labels = rng.integers(0, classes, size=nodes)
    topic = rng.dirichlet(np.full(features, 0.05), size=classes)  # each class: a few favourite words
    common = np.full(features, 1.0 / features)
    content = []
    for i in range(nodes):
        p = 0.6 * topic[labels[i]] + 0.4 * common
        x = np.zeros(features, dtype=np.int64)
        x[rng.choice(features, size=words, replace=False, p=p)] = 1
        name = LABELS[labels[i]] if classes <= len(LABELS) else f"class_{labels[i]}"
        content.append(f"{ids[i]}\t" + "\t".join(map(str, x)) + f"\t{name}")
    by_class = [np.flatnonzero(labels == c) for c in range(classes)]
    seen: set[tuple[int, int]] = set()
    cites = []
    while len(cites) < edges:
        a = int(rng.integers(nodes))
        pool = by_class[labels[a]] if rng.random() < homophily else np.arange(nodes)
        b = int(rng.choice(pool))
        if a == b or (a, b) in seen or (b, a) in seen:
            continue
        seen.add((a, b))
        cites.append(f"{ids[a]}\t{ids[b]}")
    return content, cites


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="folder to write cora.content and cora.cites into")
    p.add_argument("--nodes", type=int, default=2708)
    p.add_argument("--features", type=int, default=1433)
    p.add_argument("--classes", type=int, default=7)
    p.add_argument("--edges", type=int, default=5429)
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    content, cites = make_graph(ns.nodes, ns.features, ns.classes, ns.edges, seed=ns.seed)
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "cora.content").write_text("\n".join(content) + "\n")
    (ns.out / "cora.cites").write_text("\n".join(cites) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
