"""The one description of a case: a subject's scans by sequence, its ground truth if any, and where it came from.

Batch runs (:mod:`.cohort.inputs`), the shared research datasets (:mod:`.evaluation.datasets`), the
user's own training cohort and evaluation (:mod:`.evaluation.cases`) all list their cases as :class:`Case`.
Nothing is read when a case is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """One subject: ``images`` maps a sequence name in lower case (``t1``, ``t2``, ``flair``) to a scan file or a
    DICOM folder. Batch keeps each path as the user wrote it, so records and resume compare the same text.

    ``label``: ground-truth lesion mask (voxels > 0); ``brain_mask``: a brain mask or brain label map
    (voxels > 0); ``healthy``: a scan without lesions (used for subject-level metrics and training);
    ``source``: where the case was listed (a dataset name, a list file, a folder; informative only); ``age``: the
    patient's age in years when known (age-matched p-values, see ``score/age_bands.py``).
    """

    case_id: str
    images: dict[str, Path | str]
    label: Path | None = None
    brain_mask: Path | None = None
    healthy: bool = False
    source: str = ""
    age: float | None = None

    @property
    def path(self) -> str:
        """The first scan, as text: the only one of a batch case (batch detects one scan per case)."""
        return str(next(iter(self.images.values())))
