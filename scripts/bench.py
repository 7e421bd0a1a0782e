"""``make bench``: tinker-rest against raw httpx, every figure a ratio measured in the same run.

Usage: ``.venv/bin/python scripts/bench.py [--smoke] [--out FILE] [--only fast|import|reference]``.
The harness lives in ``scripts/bench/`` (see ``bench/harness.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
