#!/usr/bin/env bash
# Issue 16, family x scorer table at the reduced CPU scale (docs/encoders.md, "Family x scorer table"):
# every family trained on random 48^3 cubes of the 98 IXI train scans for $EPOCHS epochs (batch 4),
# the five latent scorers plus the family's own score, post-processing fixed to the bundled model's
# choice (no search), thresholds on the 20 IXI validation scans; then the table on BraTS T1 (14),
# MSLUB T1 (3) and the IXI test split (30). Preprocessing comes from the benchmark scan cache
# (benchmarks/cache_scans.py), identical for every configuration.
#     bash benchmarks/encoder_families_reduced.sh            # OUT=runs/fam EPOCHS=4 FAMILIES="ae siamese vae vqvae gmvae"
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/fam}
EPOCHS=${EPOCHS:-4}
CACHE=runs/scan_cache/latent-anomaly-t1-1.4.0
PY=${PYTHON:-python}
LATENT='{"name":"ocsvm","params":{"nu":0.1,"gamma_scale":1.0},"postprocess":{"median_size":3}},
{"name":"lof","params":{"k":10},"postprocess":{"median_size":3}},
{"name":"knn","params":{"k":10},"postprocess":{"median_size":3}},
{"name":"gaussian","params":{},"postprocess":{"median_size":3}},
{"name":"gaussian4mm","params":{"mirror_average":true},"postprocess":{"median_size":3,"gaussian_sigma_vox":2.0}}'
declare -A CONFIG=([ae]=default_t1 [siamese]=siamese_t1 [vae]=vae_t1 [vqvae]=vqvae_t1 [gmvae]=gmvae_t1)
declare -A OWN=([ae]="" [siamese]="" [vae]=vae_kl [vqvae]=vq_distance [gmvae]=gmm_energy)
bundles=()
for family in ${FAMILIES:-ae siamese vae vqvae gmvae}; do
  work=$OUT/$family
  scorers="[$LATENT]"
  if [ -n "${OWN[$family]}" ]; then
    scorers="[$LATENT,{\"name\":\"${OWN[$family]}\",\"params\":{\"standardise\":true},\"postprocess\":{\"median_size\":3}}]"
  fi
  [ -f "$work/cache/train.npz" ] || $PY benchmarks/family_workdir.py --work "$work"
  $PY -m LatentAnomalyLib.cli train --config "configs/${CONFIG[$family]}.json" --out "$work/bundle" --workdir "$work" \
    --stages encoder,scorers,bundle --progress lines --override "encoder_train.epochs=$EPOCHS" \
    --override encoder_train.patch_size=48 --override "scorers=$scorers"
  bundles+=("$work/bundle")
done
$PY benchmarks/encoder_families.py "${bundles[@]}" --scan-cache "$CACHE" --json "$OUT/families.json"
