"""A stand-in for ``six`` (not installed here): ``six.moves.urllib`` (the standard library's urllib),
``PY3`` and the Python 3 type tuples (``string_types``, ``integer_types``, ``text_type``, ``binary_type``).

Udacity's notebooks run ``from six.moves import urllib`` to install a URL opener for torchvision's
downloads; nothing is downloaded here (the torchvision stand-in makes its data), so the opener is
installed and never used.
"""

from __future__ import annotations

from . import moves

__all__ = ["PY3", "binary_type", "integer_types", "moves", "string_types", "text_type"]
PY3 = True
string_types = (str,)
integer_types = (int,)
text_type = str
binary_type = bytes
