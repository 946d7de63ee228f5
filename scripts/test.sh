#!/usr/bin/env bash
# Set everything up, lint, and run the whole test suite (tests on ../shared/data skip when it is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
python -m pytest -q "$@"
