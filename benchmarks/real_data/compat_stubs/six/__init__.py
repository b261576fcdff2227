"""A stand-in for ``six`` (not installed here): only ``six.moves.urllib``, the standard library's urllib.

Udacity's notebooks run ``from six.moves import urllib`` to install a URL opener for torchvision's
downloads; nothing is downloaded here (the torchvision stand-in makes its data), so the opener is
installed and never used.
"""

from __future__ import annotations

from . import moves

__all__ = ["moves", "PY3"]
PY3 = True
