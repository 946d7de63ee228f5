#!/usr/bin/env bash
# Set everything up (the library with every optional extra, Debian's chromium for the browser tests and Orthanc for
# the PACS tests), lint, and run the whole test suite (tests on ../shared/data skip when it is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="test,slicer,dicom,review,cluster" bash scripts/setup.sh
# Debian packages the tests drive: chromium (browser review) and Orthanc with its DICOMweb plugin (the PACS door;
# the tests start their own Orthanc on 127.0.0.1, never the system service).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || missing+=(orthanc)
compgen -G "/usr/share/orthanc/plugins/libOrthancDicomWeb.so*" >/dev/null \
  || compgen -G "/usr/lib/orthanc/libOrthancDicomWeb.so*" >/dev/null || missing+=(orthanc-dicomweb)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian's ${missing[*]} for the browser and PACS tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "${missing[*]} missing and not root: the browser or PACS tests will skip" >&2
  fi
fi
. .venv/bin/activate
ruff check .
python -m pytest -q "$@"
