#!/usr/bin/env bash
# Create .venv (if missing) and install the library with its pinned dependencies.
# torch is installed first on its own: `pip install torch==2.13.0` takes the CPU build that this
# machine keeps on disk; asking pip for it together with the rest could pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q --disable-pip-version-check -e ".[test]"
python -c "import LatentAnomalyLib, torch; print('latent-anomaly', LatentAnomalyLib.__version__, '| torch', torch.__version__)"
