"""LatentAnomaly: unsupervised anomaly detection in brain MRI from healthy scans only.

One subpackage per stage, in the order a scan goes through them (:mod:`.pipeline` is the one place that chains
them): ``io`` (read and check scans, write atomically) -> ``preprocess`` (brain mask, registration, model grid,
normalisation) -> ``encode`` (encoder networks, device) -> ``score`` (scorers, post-processing, components,
p-values) -> ``outputs`` (the files of one detection). Around them: ``bundle`` (model bundles and the loaded
model), ``cohort`` (batch detection), ``evaluation`` (metrics and reports), ``training`` and ``cli`` (the
``latent-anomaly`` command). The library never imports 3D Slicer; the Slicer module in ``LatentAnomaly/`` calls
its CLI.
"""

__version__ = "0.1.0"

# The one seed. Every stage's settings default to it, and a training configuration's top-level ``seed`` is
# handed down to every stage (training/config.py), so a run is reproduced from one number.
DEFAULT_SEED = 20261123
