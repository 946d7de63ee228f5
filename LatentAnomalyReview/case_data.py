"""One case's arrays and the review actions on them: re-threshold without the model, save the reviewed label map.

The label map is recomputed from ``heatmap`` with :func:`LatentAnomalyLib.score.components.label_components`, the function
`detect` uses (same comparison, 26-connectivity and smallest kept region), so a reviewed label map at the original
threshold equals ``labelmap``. No Slicer here: the scene is fed from these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from LatentAnomalyLib.bundle.contents import min_component_ml as bundle_min_component_ml
from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.io.write import copy_geometry, write_image, write_json
from LatentAnomalyLib.outputs.focus import focus_region, hottest_voxel_ijk, near_misses
from LatentAnomalyLib.outputs.viewing import heatmap_display_range, scan_window
from LatentAnomalyLib.score.components import label_components

from .results import REVIEWED_STEM, ResultCase, find_image, read_summary, resolve_scan


def min_component_ml(summary: dict[str, Any]) -> float:
    """The smallest region the model's calibration keeps: from the default bundle (installed wheel, repository or
    ``LATENT_ANOMALY_MODEL``, read and verified by the library) when the summary names that model, else detect's
    default of 0.1 mL."""
    model = summary.get("model") or {}
    return bundle_min_component_ml(None, model.get("scorer"), model_name=str(model.get("name") or ""))


def ras_matrix(image: sitk.Image) -> np.ndarray:
    """4x4 IJK-to-RAS matrix of a SimpleITK image (which works in LPS)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=float)
    matrix[:3, 3] = image.GetOrigin()
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ matrix


def _read(path: Path, what: str) -> sitk.Image:
    """An image as written: one read, no ``read_image`` checks (detect made and checked these files; and
    ``read_image`` refuses an all-zero image, which is a valid label map)."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(f"{path}: unreadable {what} ({str(error).strip().splitlines()[-1]})") from None
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
        raise InputError(f"{path}: the {what} is not a 3D scalar image")
    return image


def _p_value(component: dict[str, Any]) -> float | None:
    value = component.get("p_value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _same_region(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same connected component: same volume and voxel centroid (both rounded to 0.01 voxel by detect)."""
    try:
        ijk_a, ijk_b = a["centroid_voxel_ijk"], b["centroid_voxel_ijk"]
        same_centroid = len(ijk_a) == len(ijk_b) and all(abs(float(x) - float(y)) <= 0.011 for x, y in zip(ijk_a, ijk_b))
        return same_centroid and abs(float(a["volume_ml"]) - float(b["volume_ml"])) <= 1e-6
    except (KeyError, TypeError, ValueError):
        return False


@dataclass
class CaseData:
    """Arrays of one case in (z, y, x) order on the heatmap's grid, and its current review state."""

    case: ResultCase
    summary: dict[str, Any]
    reference: sitk.Image
    heatmap: np.ndarray
    scan: np.ndarray
    scan_found: bool
    labels: np.ndarray
    components: list[dict[str, Any]]
    threshold: float
    min_ml: float
    detected_labels: np.ndarray | None = None

    @classmethod
    def load(cls, case: ResultCase, root: Path) -> CaseData:
        if case.folder is None:
            raise InputError(f"{case.case_id}: its images were not exported")
        summary = read_summary(case.folder)
        reference = _read(find_image(case.folder, "heatmap"), "heatmap")
        heatmap = sitk.GetArrayFromImage(reference).astype(np.float32, copy=False)
        labels = (sitk.GetArrayFromImage(_read(find_image(case.folder, "labelmap"), "label map")) > 0).astype(np.uint8)
        if labels.shape != heatmap.shape:
            raise InputError(f"{case.folder}: label map and heatmap grids differ")
        scan_path = resolve_scan(case.scan_path or str((summary.get("input") or {}).get("path", "")), root)
        scan, found = np.zeros_like(heatmap), False
        if scan_path is not None:
            try:
                array = sitk.GetArrayFromImage(_read(scan_path, "scan"))
                if array.shape == heatmap.shape:
                    scan, found = array.astype(np.float32, copy=False), True
            except InputError:
                pass
        threshold = float(summary["voxel_threshold"])
        data = cls(case, summary, reference, heatmap, scan, found, labels, [], threshold, min_component_ml(summary))
        data.components = list(summary.get("components") or [])
        data.detected_labels = labels.copy()
        return data

    def restore_detected(self) -> None:
        """Back to detect's label map and regions (with their p-values) at its voxel threshold. With model 1.5.0's
        calibrated label map (regions with p <= alpha), re-thresholding there would give every region above it."""
        self.threshold = float(self.summary["voxel_threshold"])
        if self.detected_labels is not None:
            self.labels = self.detected_labels.copy()
        self.components = list(self.summary.get("components") or [])

    @property
    def at_calibrated_threshold(self) -> bool:
        """Whether the regions are those of detect's voxel threshold (the one their p-values were computed at)."""
        return self.threshold == float(self.summary["voxel_threshold"])

    def region_p_values(self) -> list[float | None]:
        """Each current region's p-value from ``summary.json`` (its ``components`` and ``regions_not_kept``), or
        None: at another threshold (the region calibration holds at the calibrated voxel threshold only), for a
        user threshold or a model without calibration sets (no p-value written)."""
        if not self.at_calibrated_threshold:
            return [None] * len(self.components)
        known = [*(self.summary.get("components") or []), *(self.summary.get("regions_not_kept") or [])]
        return [next((_p_value(k) for k in known if _same_region(c, k)), None) for c in self.components]

    @property
    def brain(self) -> np.ndarray:
        """Voxels the model scored (the heatmap is zero outside the brain mask)."""
        return self.heatmap != 0

    @cached_property
    def brain_corners_ras(self) -> np.ndarray | None:
        """(8, 3) RAS corners of the brain's voxel bounding box (None without a brain), to frame the views."""
        brain = self.brain
        if not brain.any():
            return None
        lows, highs = [], []
        for axis in range(3):
            hit = np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != axis)))
            lows.append(hit[0] - 0.5)
            highs.append(hit[-1] + 0.5)
        bits = np.array(list(np.ndindex(2, 2, 2)), dtype=bool)  # the 8 corners, (z, y, x) order
        ijk = np.where(bits, np.array(highs), np.array(lows))[:, ::-1]
        return (ras_matrix(self.reference) @ np.c_[ijk, np.ones(8)].T).T[:, :3]

    def focus_ras(self) -> tuple[list[float] | None, str]:
        """(RAS point, why) the views open on: the largest region shown, else the strongest near miss, else the
        hottest voxel, else the brain's centre (:mod:`LatentAnomalyLib.outputs.focus`); (None, ...) for an empty map."""
        region, why = focus_region(self.summary)
        if region is not None and region.get("centroid_ras_mm") is not None:
            return [float(v) for v in region["centroid_ras_mm"]], why
        ijk = hottest_voxel_ijk(self.heatmap)
        if ijk is not None:
            return [float(v) for v in (ras_matrix(self.reference) @ [*ijk, 1.0])[:3]], "hottest voxel"
        corners = self.brain_corners_ras
        return (None, "empty heatmap") if corners is None else ([float(v) for v in corners.mean(axis=0)], "brain centre")

    def near_misses(self) -> list[dict[str, Any]]:
        """Detect's regions above the voxel threshold that its label map does not show, strongest first."""
        return near_misses(self.summary)

    @property
    def peak(self) -> float:
        return float(self.heatmap.max()) if self.heatmap.size else self.threshold

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.reference.GetSpacing())) / 1000.0

    def scan_window(self) -> tuple[float, float]:
        return scan_window(self.scan, self.brain.astype(np.uint8))

    def display_range(self) -> tuple[float, float]:
        return heatmap_display_range(self.threshold, self.peak)

    def threshold_range(self) -> tuple[float, float, float]:
        """(min, max, step) of the threshold slider: the heatmap's display range (not under the brain's median
        score, nor under 0) up to the peak, so every value shown in colour can become the threshold."""
        values = self.heatmap[self.brain]
        median = float(np.median(values)) if values.size else self.threshold - 1.0
        original = float(self.summary["voxel_threshold"])
        low = max(heatmap_display_range(original, self.peak)[0], median)
        if original > 0:
            low = max(low, 0.0)  # the heatmap is 0 outside the brain: a negative threshold would flag the background
        low = min(low, original)
        high = max(self.peak, original)
        return low, high, max((high - low) / 200.0, 1e-6)

    def rethreshold(self, threshold: float) -> None:
        """Label map and regions at ``threshold`` from the heatmap (no model run).

        ``label_components`` runs on the bounding box of the voxels above the threshold (a sub-image keeps its
        physical position, so volumes and RAS centroids are those of the whole grid; voxel centroids are shifted
        back): the same result as on the whole grid, several times faster for the usual small regions.
        """
        self.threshold = float(threshold)
        above = self.heatmap > self.threshold
        labels = np.zeros(self.heatmap.shape, dtype=np.uint8)
        if not above.any():
            self.labels, self.components = labels, []
            return
        box = []
        for axis in range(3):
            hit = np.flatnonzero(above.any(axis=tuple(a for a in range(3) if a != axis)))
            box.append((int(hit[0]), int(hit[-1]) + 1))
        (z0, z1), (y0, y1), (x0, x1) = box
        sub_reference = self.reference[x0:x1, y0:y1, z0:z1]
        sub_labels, components = label_components(
            self.heatmap[z0:z1, y0:y1, x0:x1], self.threshold, sub_reference, self.min_ml
        )
        labels[z0:z1, y0:y1, x0:x1] = sub_labels
        for component in components:
            ijk = component["centroid_voxel_ijk"]
            component["centroid_voxel_ijk"] = [round(v + o, 2) for v, o in zip(ijk, (x0, y0, z0))]
        self.labels, self.components = labels, components

    def save_reviewed(self) -> Path:
        """Write ``labelmap_reviewed`` (same format as ``labelmap``) and its summary atomically; never ``labelmap``."""
        folder = self.case.folder
        original = find_image(folder, "labelmap")
        suffix = original.name[len("labelmap") :]
        target = folder / f"{REVIEWED_STEM}{suffix}"
        write_image(copy_geometry(self.labels, self.reference), target)
        write_json(
            {
                "case_id": self.case.case_id,
                "voxel_threshold": self.threshold,
                "original_voxel_threshold": float(self.summary["voxel_threshold"]),
                "voxels": int(self.labels.sum()),
                "flagged_volume_ml": float(self.labels.sum()) * self.voxel_ml,
                "n_components": len(self.components),
                "components": self.components,
                "source": "reviewed in latent-anomaly review",
            },
            folder / f"{REVIEWED_STEM}.json",
        )
        return target
