"""Thresholds fixed on healthy validation scans, and a synthetic-lesion check for model selection.

The voxel threshold is the (1 - voxel_fpr) quantile of post-processed scores pooled over the brain
voxels of healthy validation scans: by construction about 1% of a healthy brain is flagged. The
subject-level threshold is the (1 - subject_fpr) quantile of the per-scan scores of the same scans;
all their scores are stored, so a scan's percentile among healthy scans can be reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..encode.encoding import encode
from ..evaluation.synthetic import KINDS, paint_lesion
from ..score.base import EncodedScan
from ..score.postprocess import postprocess
from ..score.postprocess_config import PostprocessOverrides
from ..score.subject import subject_score
from .config import CalibrationConfig


def calibrate_scorer(
    scorer: Any, val_scans: Sequence[EncodedScan], post: PostprocessOverrides, config: CalibrationConfig
) -> dict[str, Any]:
    """The scorer's calibration entry: thresholds on ``val_scans`` after post-processing ``post`` (stored in full)."""
    post_config = post.apply()
    raw = [scorer.score(s) for s in val_scans]
    maps = [postprocess(r, s.mask, post_config) for r, s in zip(raw, val_scans)]
    voxels = np.concatenate([m[s.mask] for m, s in zip(maps, val_scans)])
    threshold = float(np.quantile(voxels, 1.0 - config.voxel_fpr))
    subjects = [subject_score(r, s.mask) for r, s in zip(raw, val_scans)]
    flagged = [float((m[s.mask] > threshold).mean()) for m, s in zip(maps, val_scans)]
    return {
        "voxel_threshold": threshold,
        "voxel_threshold_rule": f"{100 * (1 - config.voxel_fpr):g}th percentile of healthy validation brain voxels",
        "min_component_ml": config.min_component_ml,
        "postprocess": asdict(post_config),
        "subject": {
            "statistic": "mean of the top 1% brain voxel scores",
            "threshold": float(np.quantile(subjects, 1.0 - config.subject_fpr)),
            "healthy_scores": [float(v) for v in subjects],
        },
        "validation_flagged_fraction_median": float(np.median(flagged)),
        "n_validation_scans": len(val_scans),
    }


@dataclass
class SyntheticSet:
    """Validation scans with one painted lesion each, encoded once and shared by all scorers."""

    scans: list[EncodedScan]
    labels: list[np.ndarray]
    kinds: list[str]


def build_synthetic_set(
    val_scans: Sequence[EncodedScan],
    encoder: torch.nn.Module,
    mean: np.ndarray,
    std: np.ndarray,
    device: str,
    seed: int,
    reconstruct: bool,
    mirrored: bool = False,
) -> SyntheticSet:
    """Paint every lesion kind into every validation scan and encode the result (and its mirror, when asked)."""
    rng = np.random.default_rng(seed)
    scans, labels, kinds = [], [], []
    for scan in val_scans:
        for kind in KINDS:
            lesion = paint_lesion(scan.image, scan.mask, rng, kind)
            out = encode(
                encoder, lesion.image[None], device, mirrored=mirrored, reconstruction=reconstruct, stats=(mean, std)
            )
            rec, filtered = (out.reconstructions[0], out.filtered[0]) if reconstruct else (None, None)
            encoded = EncodedScan(lesion.image, scan.mask, out.latents[0], rec, filtered=filtered)
            encoded.mirrored_latent = out.mirrored[0] if mirrored else None
            scans.append(encoded)
            labels.append(lesion.label)
            kinds.append(kind)
    return SyntheticSet(scans, labels, kinds)


POSTPROCESS_OPTIONS = (
    PostprocessOverrides(),
    PostprocessOverrides(median_size=3),
    PostprocessOverrides(erode_mask_vox=1),
    PostprocessOverrides(median_size=3, erode_mask_vox=1),
)


def postprocess_candidates(
    fixed: PostprocessOverrides, base: PostprocessOverrides
) -> tuple[PostprocessOverrides, ...]:
    """What :func:`choose_postprocess` tries: ``base`` updated by ``fixed`` when the scorer sets its own,
    else ``base`` updated by each of :data:`POSTPROCESS_OPTIONS`."""
    if not fixed.is_empty:
        return (base.merged(fixed),)
    return tuple(base.merged(candidate) for candidate in POSTPROCESS_OPTIONS)


def choose_postprocess(
    scorer: Any,
    synthetic: SyntheticSet,
    fixed: PostprocessOverrides | None = None,
    base: PostprocessOverrides | None = None,
) -> tuple[PostprocessOverrides, list[dict[str, Any]]]:
    """Pick post-processing on the synthetic validation set (voxel AUPRC); never on test scans.

    ``fixed`` (a scorer's own setting in the configuration) skips the search; ``base`` (the
    configuration's common post-processing, e.g. within-scan normalisation) is part of every
    candidate. Returns (chosen options, every candidate's result).
    """
    from ..evaluation.metrics import voxel_metrics

    fixed, base = fixed or PostprocessOverrides(), base or PostprocessOverrides()
    candidates = postprocess_candidates(fixed, base)
    if not fixed.is_empty:
        return candidates[0], []
    raw = [scorer.score(s) for s in synthetic.scans]
    results = []
    for options in candidates:
        config = options.apply()
        maps = [postprocess(m, s.mask, config) for m, s in zip(raw, synthetic.scans)]
        y = np.concatenate([lab[s.mask] for lab, s in zip(synthetic.labels, synthetic.scans)])
        x = np.concatenate([m[s.mask] for m, s in zip(maps, synthetic.scans)])
        metrics = voxel_metrics(x, y)
        results.append(
            {
                "options": options.to_dict(),
                "auprc": metrics["auprc"],
                "auroc": metrics["auroc"],
                "best_dice": metrics["best_dice"],
            }
        )
    best = max(range(len(results)), key=lambda i: results[i]["auprc"] or 0.0)  # the first best, as before
    return candidates[best], results


def synthetic_validation(scorer: Any, synthetic: SyntheticSet, post: PostprocessOverrides) -> dict[str, float]:
    """Pooled voxel AUROC / AUPRC on the synthetic set (and AUPRC per lesion kind)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    post_config = post.apply()
    maps = [postprocess(scorer.score(s), s.mask, post_config) for s in synthetic.scans]
    y = np.concatenate([lab[s.mask] for lab, s in zip(synthetic.labels, synthetic.scans)])
    x = np.concatenate([m[s.mask] for m, s in zip(maps, synthetic.scans)])
    out = {"auroc": float(roc_auc_score(y, x)), "auprc": float(average_precision_score(y, x))}
    for kind in sorted(set(synthetic.kinds)):
        idx = [i for i, k in enumerate(synthetic.kinds) if k == kind]
        yk = np.concatenate([synthetic.labels[i][synthetic.scans[i].mask] for i in idx])
        xk = np.concatenate([maps[i][synthetic.scans[i].mask] for i in idx])
        out[f"auprc_{kind}"] = float(average_precision_score(yk, xk))
    return out
