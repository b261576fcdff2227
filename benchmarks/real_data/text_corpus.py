"""Write a synthetic English-like text (a seeded word-level Markov chain) for char/word language models.

``python text_corpus.py OUT [--chars N] [--char-bins]``: the real scripts expect a text file
(tiny-shakespeare, a training split) that their repositories do not ship; this makes one of
the requested size. With ``--char-bins`` it also writes, beside OUT, the character-level
``train.bin`` / ``val.bin`` / ``meta.pkl`` (uint16 ids, 90/10 split) that a data-preparation
step would make from it. Words follow a Zipf law and each word prefers a few
successors, so there is structure to learn beyond the unigram frequencies.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random

import numpy as np

__all__ = ["make_text", "write_char_bins", "main"]

_SYLLABLES = ["ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de", "ba", "po", "ri", "an", "el",
              "or", "is", "um", "et", "ha", "qu"]


def make_text(n_chars: int, n_words: int = 600, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = sorted({"".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3)))
                    for _ in range(n_words * 2)})[:n_words]
    rng.shuffle(words)
    weights = [1.0 / (r + 1) for r in range(len(words))]
    successors = {w: rng.choices(range(len(words)), weights=weights, k=5) for w in words}
    out: list[str] = []
    size = 0
    line: list[str] = []
    w = words[0]
    while size < n_chars:
        if rng.random() < 0.7:
            w = words[rng.choice(successors[w])]
        else:
            w = rng.choices(words, weights=weights)[0]
        line.append(w)
        if len(line) >= rng.randint(6, 12):
            text = " ".join(line).capitalize() + ("." if rng.random() < 0.8 else "?")
            out.append(text)
            size += len(text) + 1
            line = []
    return "\n".join(out) + "\n"


def write_char_bins(text: str, folder: str) -> None:
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    cut = int(len(ids) * 0.9)
    ids[:cut].tofile(os.path.join(folder, "train.bin"))
    ids[cut:].tofile(os.path.join(folder, "val.bin"))
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}
    with open(os.path.join(folder, "meta.pkl"), "wb") as fh:
        pickle.dump(meta, fh)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--chars", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--char-bins", action="store_true")
    ns = p.parse_args(argv)
    text = make_text(ns.chars, seed=ns.seed)
    os.makedirs(os.path.dirname(os.path.abspath(ns.out)), exist_ok=True)
    with open(ns.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    if ns.char_bins:
        write_char_bins(text, os.path.dirname(os.path.abspath(ns.out)))


if __name__ == "__main__":
    main()
