"""Key slices with the heatmap overlay as one DICOM Secondary Capture image, for viewers that show neither SEG nor SR.

Why: many PACS viewers display any image but not a segmentation or a structured report; a picture of the three
views through the most anomalous region (the largest label-map region, else the hottest voxel), in the viewing
conventions of the review page and the Slicer module (scan windowed to brain percentiles, Inferno heatmap transparent
below its display range, label-map outline green), then reaches every reader. The picture carries no text, so no
patient data is burned in. Views are radiological: axial and coronal with the patient's left on the right, superior
up; sagittal with anterior on the left. Pixels are resampled to square (the finest spacing of the scan), and small
pictures enlarged to at least 256 rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .montage import choose_slices
from .viewing import LABEL_OUTLINE_RGB, heatmap_rgba, scan_window

GAP_PIXELS = 4
MIN_ROWS = 256  # smaller pictures are enlarged by a whole factor (nearest neighbour) to stay legible


def _lps_arrays(*images: sitk.Image) -> tuple[list[np.ndarray], tuple[float, float, float]]:
    oriented = [sitk.DICOMOrient(image, "LPS") for image in images]
    return [sitk.GetArrayFromImage(image).astype(np.float64) for image in oriented], oriented[0].GetSpacing()


def _panel(
    scan: np.ndarray, heat: np.ndarray, label: np.ndarray, window: tuple[float, float], shown: dict
) -> np.ndarray:
    grey = np.clip((scan - window[0]) / (window[1] - window[0]), 0.0, 1.0)[..., None].repeat(3, axis=-1)
    overlay = heatmap_rgba(heat, shown["threshold"], peak=shown["peak"])
    rgb = grey * (1.0 - overlay[..., 3:]) + overlay[..., :3] * overlay[..., 3:]
    mask = label > 0
    rgb[mask & ~ndimage.binary_erosion(mask)] = LABEL_OUTLINE_RGB
    return rgb


def key_slices_picture(scan: sitk.Image, heatmap: sitk.Image, labelmap: sitk.Image, threshold: float) -> np.ndarray:
    """(rows, columns, 3) uint8: axial, coronal and sagittal views side by side through the key voxel."""
    (volume, heat, label), (sx, sy, sz) = _lps_arrays(scan, heatmap, labelmap)
    z, y, x = choose_slices(label if label.any() else None, heat)
    brain = heat != 0
    window = scan_window(volume, brain if brain.any() and not brain.all() else None)
    shown = {"threshold": float(threshold), "peak": float(max(heat.max(initial=threshold), threshold))}
    finest = min(sx, sy, sz)
    views = [  # (scan, heat, label) slices and their (row, column) spacing
        ((volume[z], heat[z], label[z]), (sy, sx)),
        ((np.flipud(volume[:, y, :]), np.flipud(heat[:, y, :]), np.flipud(label[:, y, :])), (sz, sx)),
        ((np.flipud(volume[:, :, x]), np.flipud(heat[:, :, x]), np.flipud(label[:, :, x])), (sz, sy)),
    ]
    panels = []
    for (s, h, m), (row_mm, column_mm) in views:
        rgb = _panel(s, h, m, window, shown)
        panels.append(ndimage.zoom(rgb, (row_mm / finest, column_mm / finest, 1.0), order=0))
    height = max(p.shape[0] for p in panels)
    padded = []
    for panel in panels:
        canvas = np.zeros((height, panel.shape[1] + GAP_PIXELS, 3))
        canvas[: panel.shape[0], : panel.shape[1]] = panel
        padded.append(canvas)
    picture = np.round(np.concatenate(padded, axis=1)[:, :-GAP_PIXELS] * 255.0).astype(np.uint8)
    factor = -(-MIN_ROWS // picture.shape[0])
    return picture.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else picture


def key_slices_capture(
    picture: np.ndarray, reference: Any, series_instance_uid: str, sop_instance_uid: str, series_number: int
) -> Any:
    """``picture`` as a Secondary Capture image in the study of ``reference`` (a dataset of the source series)."""
    import highdicom as hd

    capture = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=reference,
        pixel_array=picture,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer="LatentAnomaly",
        patient_orientation=("L", "P"),
    )
    capture.SeriesDescription = "LatentAnomaly key slices"
    capture.BurnedInAnnotation = "NO"
    return capture
