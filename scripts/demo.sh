#!/usr/bin/env bash
# Set everything up, then detect anomalies in the committed sample scans with the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
latent-anomaly info
echo
latent-anomaly detect Testing/Data/MSLUB_patient07_T1.nii.gz --out results/demo/mslub_patient07 --overwrite
latent-anomaly detect Testing/Data/IXI_sample_T1.nii.gz --out results/demo/ixi_sample --overwrite
echo
echo "Outputs: results/demo/<case>/heatmap.nii.gz, labelmap.nii.gz and summary.json"
