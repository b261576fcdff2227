"""A small stand-in for torchvision (not installed here, and not to be used): datasets made on the spot.

Only what the real scripts of ``benchmarks/real_scripts.json`` import: ``datasets`` (MNIST-like
digits built from scikit-learn's 8x8 digits, shipped in the package: nothing is downloaded),
``transforms`` (on uint8 tensors where torchvision takes PIL images) and ``utils`` (``save_image``
writes nothing). The scripts' own code runs unchanged; only their data comes from here.
"""

from __future__ import annotations

from . import datasets, transforms, utils

__all__ = ["datasets", "transforms", "utils"]
__version__ = "0.0-stub"
