#!/usr/bin/env bash
# Issue 16, outlier removal on impure training sets (Behrendt et al., ISBI 2022, Fig. 2) at the reduced
# CPU scale (docs/encoders.md, "Outlier removal"): the ae family on random 48^3 cubes, the first 32 IXI
# train scans plus the T1 of the first 1, 2 or 4 BraTS cases (sorted by id: 3.0%, 5.9%, 11.1% of the
# training set), each with and without --outlier-removal (decision after epoch 1 on whole-scan losses,
# gamma 1.5, then $EPOCHS epochs from a fresh start); default scorer only. Reported on the lesion scans
# never injected (BraTS beyond the first 4, MSLUB) against the IXI test split, then the table.
#     bash benchmarks/outlier_removal_reduced.sh           # OUT=runs/outliers EPOCHS=3
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/outliers}
EPOCHS=${EPOCHS:-3}
CACHE=runs/scan_cache/latent-anomaly-t1-1.4.0
PY=${PYTHON:-python}
SCORERS='[{"name":"gaussian4mm","params":{"mirror_average":true},"postprocess":{"median_size":3,"gaussian_sigma_vox":2.0}}]'
bundles=()
for n in 1 2 4; do
  for removal in off on; do
    work=$OUT/inject$n-$removal
    flags=()
    [ "$removal" = on ] && flags=(--outlier-removal loss --override encoder_train.outlier_every=1)
    [ -f "$work/cache/train.npz" ] || $PY benchmarks/family_workdir.py --work "$work" --train-scans 32 --inject $n
    $PY -m LatentAnomalyLib.cli train --config configs/default_t1.json --out "$work/bundle" --workdir "$work" \
      --stages encoder,scorers,bundle --progress lines --override "encoder_train.epochs=$EPOCHS" \
      --override encoder_train.patch_size=48 --override "scorers=$SCORERS" "${flags[@]}"
    bundles+=("$work/bundle")
  done
done
$PY benchmarks/encoder_families.py "${bundles[@]}" --scan-cache "$CACHE" --exclude "$OUT/inject4-on/family_workdir.json" \
  --json "$OUT/outliers.json"
$PY benchmarks/outlier_removal_table.py "$OUT"
