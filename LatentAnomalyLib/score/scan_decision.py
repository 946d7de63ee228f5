"""The scan's decision from another map than the one shown (config ``decision_scorers``, model 1.10.0).

Why: the evidence that best says *whether* a scan holds a lesion is not the map that best says *where*. The
fifth probe of issue 28 (``docs/map-design.md``) found that adding the hemispheric asymmetry to the default map
flags more tumours (BraTS validation lesions 6/8 against 5/8) while it makes the voxel map worse (validation
AUPRC 0.477 -> 0.435): asymmetry is coarse (8 mm cells) and spills beyond the lesion. So a bundle may name, for a
shown scorer, a decision scorer: the subject p-value and flag come from the decision scorer's map and its own
calibration sets (map statistic and largest region peak at its own voxel threshold), while the heatmap, the
regions, their p-values and the label map stay the shown scorer's. A flagged scan shows every region of the shown
map above its voxel threshold (``regions_shown`` "flagged_scan"), so both guarantees stay those of the decision
scorer's sets: P(healthy scan flagged) <= alpha and P(any region shown) <= alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from .base import EncodedScan
from .components import label_components
from .location_normalised import LocationNormalisedScorer
from .postprocess import PostprocessConfig, postprocess


@dataclass
class DecisionEvidence:
    """The decision scorer's map on the model grid and its largest region peak at its calibrated voxel threshold."""

    scorer: str
    raw: np.ndarray
    region_peak: float


def decision_evidence(
    model: Any,
    name: str,
    shown: str,
    encoded: EncodedScan,
    shown_map: np.ndarray,
    to_native: Any,
    voxel_threshold: float,
) -> DecisionEvidence:
    """The evidence of decision scorer ``name`` of ``model`` for the shown scorer ``shown``.

    ``shown_map`` is the shown scorer's post-processed model-grid map: a location-normalised decision scorer built
    on it reuses it instead of scoring the scan twice. ``to_native`` maps a model-grid map to the scan's grid,
    where regions are measured as for the shown map."""
    scorer = model.scorers[name]
    if isinstance(scorer, LocationNormalisedScorer) and scorer.base == shown:
        raw = scorer.score_from_base(encoded, shown_map)
    else:
        raw = scorer.score(encoded)
    config = PostprocessConfig(**model.calibration["scorers"][name].get("postprocess", {}))
    native = to_native(postprocess(raw, encoded.mask, config))
    min_ml = float(model.calibration["scorers"][name].get("min_component_ml", 0.1))
    regions = label_components(sitk.GetArrayFromImage(native), voxel_threshold, native, min_ml)[1]
    return DecisionEvidence(name, raw, max((c["peak_score"] for c in regions), default=0.0))


def describe_decision(evidence: DecisionEvidence, shown: str) -> str:
    """The sentence summary.json gives on where the scan's decision comes from."""
    return (
        f"subject p-value and flag from scorer {evidence.scorer}'s map and calibration sets; heatmap, regions and "
        f"label map from scorer {shown}"
    )
