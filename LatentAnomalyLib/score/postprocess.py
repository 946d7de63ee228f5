"""Post-processing of a model-grid score map: options stored per scorer in the bundle (their types, and the
partial sections configurations write, in :mod:`.postprocess_config`).

Each option is known to matter in the literature (Baur et al. 2021; Meissen et al. 2021) and is
chosen on validation data, never on reported test scans: a median filter against isolated voxels,
an erosion of the brain mask against edge artefacts (registration and skull-stripping borders are
where healthy scans score worst), and a Gaussian smoothing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .postprocess_config import PostprocessConfig


def normalise_within_scan(score: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scores relative to the scan's own brain: (s - median) / (1.4826 MAD).

    Why: a scanner unlike any in the training set shifts every location's score the same way;
    lesions are a minority of the brain, so the scan's median and MAD describe its healthy part.
    The cost: a change that covers most of the brain is normalised away, so the subject-level
    score is computed before this step.
    """
    values = score[mask]
    if values.size == 0:
        return score
    median = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - median))) or 1.0
    return (score - median) / mad


def postprocess(score: np.ndarray, mask: np.ndarray, config: PostprocessConfig) -> np.ndarray:
    """Filtered score map, 0 outside the (optionally eroded) brain mask."""
    out = score.astype(np.float32, copy=True)
    if config.scan_normalise:
        out = normalise_within_scan(out, mask).astype(np.float32)
    if config.median_size > 1:
        out = ndimage.median_filter(out, size=config.median_size)
    if config.gaussian_sigma_vox > 0:
        out = ndimage.gaussian_filter(out, config.gaussian_sigma_vox)
    keep = mask
    if config.erode_mask_vox > 0:
        keep = ndimage.binary_erosion(mask, iterations=config.erode_mask_vox)
    out[~keep] = 0.0
    return out
