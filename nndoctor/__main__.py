from __future__ import annotations

import sys

from nndoctor.cli import main

sys.exit(main())
