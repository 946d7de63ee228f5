#!/usr/bin/env bash
# Set everything up (the library with every optional extra, and Debian's chromium for the browser tests),
# lint, and run the whole test suite (tests on ../shared/data skip when it is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="test,slicer,dicom,review,cluster" bash scripts/setup.sh
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium and chromium-driver for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium/chromedriver missing and not root: the browser tests will skip" >&2
  fi
fi
. .venv/bin/activate
ruff check .
python -m pytest -q "$@"
