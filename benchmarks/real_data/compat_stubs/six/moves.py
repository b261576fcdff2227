"""``six.moves`` on Python 3: the standard library's modules under their Python 3 names."""

from __future__ import annotations

import urllib
import urllib.parse
import urllib.request

__all__ = ["urllib"]
