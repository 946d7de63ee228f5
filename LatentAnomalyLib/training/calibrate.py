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

from ..pipeline import subject_score
from ..postprocess import PostprocessConfig, postprocess
from ..scorers import EncodedScan
from ..synthetic import KINDS, paint_lesion
from .config import CalibrationConfig


def calibrate_scorer(scorer: Any, val_scans: Sequence[EncodedScan], post: dict[str, Any], config: CalibrationConfig) -> dict[str, Any]:
    post_config = PostprocessConfig(**post)
    maps = [postprocess(scorer.score(s), s.mask, post_config) for s in val_scans]
    voxels = np.concatenate([m[s.mask] for m, s in zip(maps, val_scans)])
    threshold = float(np.quantile(voxels, 1.0 - config.voxel_fpr))
    subjects = [subject_score(m, s.mask) for m, s in zip(maps, val_scans)]
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


def build_synthetic_set(val_scans: Sequence[EncodedScan], encoder: torch.nn.Module, mean: np.ndarray, std: np.ndarray,
                        device: str, seed: int, reconstruct: bool) -> SyntheticSet:
    rng = np.random.default_rng(seed)
    scans, labels, kinds = [], [], []
    for scan in val_scans:
        for kind in KINDS:
            lesion = paint_lesion(scan.image, scan.mask, rng, kind)
            with torch.inference_mode():
                x = torch.from_numpy(lesion.image)[None, None].to(device)
                z = encoder.encode(x)
                rec = encoder.decode(z)[0, 0].float().cpu().numpy() if reconstruct else None
            latent = (z[0].float().cpu().numpy() - mean[:, None, None, None]) / std[:, None, None, None]
            scans.append(EncodedScan(lesion.image, scan.mask, latent.astype(np.float32), rec))
            labels.append(lesion.label)
            kinds.append(kind)
    return SyntheticSet(scans, labels, kinds)


def synthetic_validation(scorer: Any, synthetic: SyntheticSet, post: dict[str, Any]) -> dict[str, float]:
    """Pooled voxel AUROC / AUPRC on the synthetic set (and AUPRC per lesion kind)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    post_config = PostprocessConfig(**post)
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
