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
# every region above the voxel threshold, each with its p-value (the calibrated default keeps those with p <= alpha)
latent-anomaly detect Testing/Data/MSLUB_patient07_T1.nii.gz --out results/demo/mslub_patient07_all_regions \
  --regions all --overwrite
echo
echo "Outputs: results/demo/<case>/heatmap.nii.gz, labelmap.nii.gz and summary.json"
