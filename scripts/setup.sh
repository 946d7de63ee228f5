#!/usr/bin/env bash
# Create .venv (if missing) and install the library with its pinned dependencies ($EXTRAS: which optional extras,
# default "test"; scripts/test.sh asks for all of them).
# torch is installed first on its own: `pip install torch==2.13.0` takes the CPU build that this
# machine keeps on disk; asking pip for it together with the rest could pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
# pip's own exit status decides; only this machine's noise about missing extra index folders is dropped.
quiet_pip() { python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2 || true); }
python -c "import torch" 2>/dev/null || quiet_pip torch==2.13.0
quiet_pip -e ".[${EXTRAS:-test}]"
python -c "import LatentAnomalyLib, torch; print('latent-anomaly', LatentAnomalyLib.__version__, '| torch', torch.__version__)"
