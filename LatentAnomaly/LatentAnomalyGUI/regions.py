"""The flagged components as rows of the module's table, each with the RAS point the slice views jump to.

Users review a detection region by region: the table lists every component of the label map (largest
first) and a click centres the slice views on it. The rows come from the summary the CLI wrote, or from
the summary ``rethreshold.py`` rebuilds after the slider moved, so they always describe the label map
on screen. Each row carries the region's conformal p-value (models from 1.5.0) and whether it is at most the
summary's alpha (1.5.x kept exactly those in the calibrated label map; from 1.6.0 a flagged scan shows all its
regions, each with its own p-value); regions recomputed at another threshold have none ("n/a": the region
calibration holds at the calibrated voxel threshold only), and a model without calibration leaves both cells empty.
Centroids are in the scan's own RAS millimetres (``LatentAnomalyLib.score.components`` converts
SimpleITK's LPS), which is what Slicer calls RAS for the untransformed volume; when a summary has only
the voxel centroid, the volume's IJK-to-RAS matrix gives the same point. Below the label map's regions the table
lists detect's near misses (regions above the voxel threshold that the label map does not show, strongest first,
"(not shown)" after their number), so a scan that is not flagged still has its strongest evidence one click away.
Plain Python: tested without Slicer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from LatentAnomalyLib.outputs.focus import near_misses
from LatentAnomalyLib.score.conformal import finite_number

COLUMNS = ("#", "Volume (mL)", "Peak score", "p-value", "p \u2264 alpha", "Centroid R, A, S (mm)")
NOT_AVAILABLE = "n/a"

Matrix4 = Sequence[Sequence[float]]


@dataclass(frozen=True)
class RegionRow:
    """One flagged component: what the table shows and where a click on it jumps to (``ras`` may be None)."""

    number: int
    volume_ml: float
    peak_score: float | None
    ras: tuple[float, float, float] | None
    p_value: float | None = None
    kept: bool | None = None
    calibrated: bool = False
    shown: bool = True

    def cells(self) -> tuple[str, str, str, str, str, str]:
        """The table cells, in :data:`COLUMNS` order (p-value cells: "n/a" for a calibrated model's region without
        one, empty for a model without calibration)."""
        peak = "?" if self.peak_score is None else f"{self.peak_score:.2f}"
        where = "?" if self.ras is None else ", ".join(f"{v:.1f}" for v in self.ras)
        missing = NOT_AVAILABLE if self.calibrated else ""
        p = missing if self.p_value is None else f"{self.p_value:.3g}"
        kept = missing if self.kept is None else ("yes" if self.kept else "no")
        number = str(self.number) if self.shown else f"{self.number} (not shown)"
        return number, f"{self.volume_ml:.2f}", peak, p, kept, where




def _point(values: Any) -> tuple[float, float, float] | None:
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != 3:
        return None
    point = tuple(finite_number(v) for v in values)
    return None if any(v is None for v in point) else point  # type: ignore[return-value]


def ijk_to_ras(matrix: Matrix4, ijk: Sequence[float]) -> tuple[float, float, float]:
    """Apply a 4x4 IJK-to-RAS matrix (Slicer's ``GetIJKToRASMatrix``, as nested lists) to a continuous index."""
    i, j, k = (float(v) for v in ijk)
    return tuple(float(row[0]) * i + float(row[1]) * j + float(row[2]) * k + float(row[3]) for row in matrix[:3])  # type: ignore[return-value]


def centroid_ras(
    component: Mapping[str, Any], ijk_to_ras_matrix: Matrix4 | None = None
) -> tuple[float, float, float] | None:
    """The component's centroid in RAS mm: ``centroid_ras_mm``, else ``centroid_voxel_ijk`` through the matrix."""
    ras = _point(component.get("centroid_ras_mm"))
    if ras is not None:
        return ras
    ijk = _point(component.get("centroid_voxel_ijk"))
    if ijk is not None and ijk_to_ras_matrix is not None:
        return ijk_to_ras(ijk_to_ras_matrix, ijk)
    return None


def region_rows(summary: Mapping[str, Any] | None, ijk_to_ras_matrix: Matrix4 | None = None) -> list[RegionRow]:
    """Rows for every component of ``summary``, largest first (equal volumes: higher peak, then mean score first, as
    detect orders them), numbered 1..n in that order."""
    components = [c for c in (summary or {}).get("components") or [] if isinstance(c, Mapping)]
    components.sort(
        key=lambda c: (
            -(finite_number(c.get("volume_ml")) or 0.0),
            -(finite_number(c.get("peak_score")) or 0.0),
            -(finite_number(c.get("mean_score")) or 0.0),
        )
    )
    return _rows(components, summary, ijk_to_ras_matrix, start=1, shown=True)


def near_miss_rows(
    summary: Mapping[str, Any] | None, ijk_to_ras_matrix: Matrix4 | None = None, start: int = 1
) -> list[RegionRow]:
    """Rows for detect's near misses (``regions_not_kept``, strongest first), numbered from ``start``; none once the
    threshold moved away from detect's (they describe detect's label map, not the one on screen)."""
    detected = finite_number((summary or {}).get("detected_voxel_threshold"))
    if detected is not None and detected != finite_number((summary or {}).get("voxel_threshold")):
        return []
    return _rows(near_misses(summary), summary, ijk_to_ras_matrix, start=start, shown=False)


def _rows(
    regions: list[Mapping[str, Any]], summary: Mapping[str, Any] | None, matrix: Matrix4 | None, start: int, shown: bool
) -> list[RegionRow]:
    alpha = finite_number((summary or {}).get("alpha"))
    rows = []
    for number, component in enumerate(regions, start=start):
        p = finite_number(component.get("p_value"))
        rows.append(
            RegionRow(
                number,
                finite_number(component.get("volume_ml")) or 0.0,
                finite_number(component.get("peak_score")),
                centroid_ras(component, matrix),
                p_value=p,
                kept=None if p is None or alpha is None else p <= alpha,
                calibrated=alpha is not None,
                shown=shown,
            )
        )
    return rows
