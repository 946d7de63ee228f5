"""Put ``benchmarks/`` on ``sys.path`` so the research scripts here reuse its helpers (``common``, ``cache_scans``).

Every script here that needs them imports this module first, for that effect only.
"""

import sys
from pathlib import Path

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.append(BENCHMARKS)
