"""``python -m LatentAnomalyLib.cli``: the ``latent-anomaly`` command (the Slicer module runs it this way)."""

import sys

from .main import main

sys.exit(main())
