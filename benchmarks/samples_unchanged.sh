#!/usr/bin/env bash
# Detect on the committed samples with an earlier commit (default 0bf9831, before issue 27) and with this checkout;
# print p-values, scores, brain volumes and the largest heatmap difference. Preprocessing changes must leave them
# identical: the bundled model's calibration depends on it.
#   bash benchmarks/samples_unchanged.sh [BASE_COMMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:-0bf9831}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
git archive "$BASE" | tar -x -C "$WORK" --one-top-level=base
PY="$PWD/.venv/bin/python"
for s in IXI_sample_T1 MSLUB_patient07_T1; do
  (cd "$WORK/base" && PYTHONPATH="$WORK/base" "$PY" -m LatentAnomalyLib.cli detect "$OLDPWD/Testing/Data/$s.nii.gz" \
    --out "$WORK/base_$s" --device cpu --progress none >/dev/null)
  "$PY" -m LatentAnomalyLib.cli detect "Testing/Data/$s.nii.gz" --out "$WORK/new_$s" --device cpu --progress none >/dev/null
done
"$PY" - "$WORK" "$BASE" <<'PY'
import json, sys
import numpy as np, SimpleITK as sitk
work, base = sys.argv[1], sys.argv[2]
print(f"| sample | p ({base}) | p (now) | subject score ({base}) | subject score (now) | brain mL ({base}) | brain mL (now) | max heatmap difference | label maps identical |")
print("|---|---|---|---|---|---|---|---|---|")
for s in ["IXI_sample_T1", "MSLUB_patient07_T1"]:
    a, b = (json.load(open(f"{work}/{k}_{s}/summary.json")) for k in ("base", "new"))
    ha, hb = (sitk.GetArrayFromImage(sitk.ReadImage(f"{work}/{k}_{s}/heatmap.nii.gz")) for k in ("base", "new"))
    la, lb = (sitk.GetArrayFromImage(sitk.ReadImage(f"{work}/{k}_{s}/labelmap.nii.gz")) for k in ("base", "new"))
    print(f"| {s} | {a['subject_p_value']:.4f} | {b['subject_p_value']:.4f} | {a['subject_score']:.6f} | {b['subject_score']:.6f} "
          f"| {a['brain_volume_ml']:.3f} | {b['brain_volume_ml']:.3f} | {float(np.abs(ha - hb).max()):g} | {bool((la == lb).all())} |")
PY
