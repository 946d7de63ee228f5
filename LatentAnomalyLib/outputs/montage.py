"""The montage figure of one case in the shared viewing conventions (:mod:`LatentAnomalyLib.outputs.viewing`).

Split from :mod:`LatentAnomalyLib.evaluation.report` (which embeds it as a PNG): the scan windowed to brain percentiles, the
Inferno heatmap overlaid (transparent below its display range) and the ground-truth and label-map outlines, through
the largest lesion. Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from scipy import ndimage

from .viewing import (
    LABEL_OUTLINE_RGB,
    TRUTH_OUTLINE_RGB,
    heatmap_display_range,
    heatmap_rgba,
    inferno_table,
    scan_window,
)

__all__ = ["choose_slices", "display_settings", "montage_figure"]


def choose_slices(labels: np.ndarray | None, heatmap: np.ndarray) -> tuple[int, int, int]:
    """(z, y, x) voxel to slice through: the centroid of the largest ground-truth 26-connected component, moved to
    that component's nearest voxel when the centroid lies outside it; without lesion voxels, the heatmap maximum.
    """
    if labels is not None and np.any(labels):
        lab, n = ndimage.label(np.asarray(labels).astype(bool), structure=np.ones((3, 3, 3), dtype=bool))
        largest = int(np.argmax(np.bincount(lab.ravel(), minlength=n + 1)[1:])) + 1
        voxels = np.argwhere(lab == largest)
        centroid = voxels.mean(axis=0)
        nearest = voxels[np.argmin(((voxels - centroid) ** 2).sum(axis=1))]
        return int(nearest[0]), int(nearest[1]), int(nearest[2])
    h = np.asarray(heatmap, dtype=np.float64)
    finite = np.isfinite(h)
    if not np.any(finite):
        return tuple(int(s // 2) for s in h.shape)  # type: ignore[return-value]
    idx = np.unravel_index(int(np.argmax(np.where(finite, h, -np.inf))), h.shape)
    return int(idx[0]), int(idx[1]), int(idx[2])


def _contour(ax: Any, mask: np.ndarray, colour: Any) -> None:
    """Outline a 2D mask; zero padding closes contours of regions touching the border, axis limits are kept."""
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    padded = np.pad(mask.astype(np.float32), 1)
    ys = np.arange(-1, mask.shape[0] + 1)
    xs = np.arange(-1, mask.shape[1] + 1)
    ax.contour(xs, ys, padded, levels=[0.5], colors=[colour], linewidths=1.2)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


def _views(volume: np.ndarray, zyx: tuple[int, int, int]) -> list[np.ndarray]:
    z, y, x = zyx
    return [volume[z], volume[:, y, :], volume[:, :, x]]


def _overlay(values: np.ndarray, threshold: float, peak: float) -> np.ndarray:
    """``viewing.heatmap_rgba`` of a slice in the colours of the whole volume (its ``peak``)."""
    return heatmap_rgba(values, threshold, peak=peak)


def display_settings(
    image: np.ndarray,
    heatmap: np.ndarray,
    prediction: np.ndarray | None,
    threshold: float | None = None,
    vmax: float | None = None,
    brain: np.ndarray | None = None,
) -> dict[str, float]:
    """Scan window and heatmap colour settings of a montage, as the review page and the Slicer module show them.

    ``low``/``high``: ``viewing.scan_window`` over the brain (``brain``, else the voxels the heatmap scored, i.e.
    non-zero, else the scan's non-zero voxels). ``threshold``: as given, else the lowest score inside
    ``prediction`` (a label map is ``heatmap > threshold``), else the brain's 99th score percentile. ``peak``: ``vmax``
    when given (the colours saturate there), else the hottest voxel.
    """
    finite = np.where(np.isfinite(heatmap), heatmap, 0.0)
    if brain is None:
        scored = finite != 0
        brain = scored if scored.any() and not scored.all() else None
    low, high = scan_window(np.where(np.isfinite(image), image, 0.0), brain)
    inside = finite[brain > 0] if brain is not None else finite.ravel()
    if threshold is None:
        if prediction is not None and np.any(prediction):
            threshold = float(finite[np.asarray(prediction, dtype=bool)].min())
        else:
            threshold = float(np.percentile(inside, 99)) if inside.size else 0.0
    peak = float(vmax) if vmax is not None and vmax > threshold else float(finite.max(initial=threshold))
    return {"low": low, "high": high, "threshold": float(threshold), "peak": peak}


def montage_figure(
    image: np.ndarray,
    heatmap: np.ndarray,
    labels: np.ndarray | None,
    prediction: np.ndarray | None,
    title: str,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    vmax: float | None = None,
    *,
    threshold: float | None = None,
    brain: np.ndarray | None = None,
) -> Figure:
    """Axial, coronal and sagittal rows through the largest lesion (or the heatmap maximum), in the viewing
    conventions (:mod:`LatentAnomalyLib.outputs.viewing`): left the scan windowed to brain percentiles, right the same with
    the Inferno heatmap overlaid (transparent below its display range) and the ground-truth (blue) and label-map
    (green) outlines. Arrays are (z, y, x); ``spacing`` is (sz, sy, sx); settings as in :func:`display_settings`.
    """
    image = np.asarray(image, dtype=np.float64)
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.shape != image.shape or image.ndim != 3:
        raise ValueError(f"image and heatmap must be 3D arrays of one shape, got {image.shape} and {heatmap.shape}")
    masks = {}
    for key, mask in (("labels", labels), ("prediction", prediction), ("brain", brain)):
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.shape != image.shape:
                raise ValueError(f"{key} shape {mask.shape} differs from image shape {image.shape}")
        masks[key] = mask
    zyx = choose_slices(masks["labels"], heatmap)
    shown = display_settings(image, heatmap, masks["prediction"], threshold, vmax, masks["brain"])
    sz, sy, sx = (float(s) for s in spacing)
    view_names = [f"axial z={zyx[0]}", f"coronal y={zyx[1]}", f"sagittal x={zyx[2]}"]
    aspects = [sy / sx, sz / sx, sz / sy]
    origins = ["upper", "lower", "lower"]
    outlines = (("labels", TRUTH_OUTLINE_RGB, "ground truth"), ("prediction", LABEL_OUTLINE_RGB, "label map"))

    fig = Figure(figsize=(9.5, 12.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2, squeeze=False)
    images, heats = _views(image, zyx), _views(np.nan_to_num(heatmap), zyx)
    contours = {k: (_views(masks[k], zyx) if masks[k] is not None else None) for k, _, _ in outlines}
    for row in range(3):
        for col in range(2):
            ax = axes[row, col]
            kw = {"aspect": aspects[row], "origin": origins[row], "interpolation": "nearest"}
            ax.imshow(images[row], cmap="gray", vmin=shown["low"], vmax=shown["high"], **kw)
            if col == 1:
                ax.imshow(_overlay(heats[row], shown["threshold"], shown["peak"]), **kw)
                notes = []
                for key, colour, name in outlines:
                    views = contours[key]
                    if views is None or not views[row].any():
                        notes.append(f"{name}: {'none' if views is None else 'not in slice'}")
                    else:
                        _contour(ax, views[row], colour)
                if notes:
                    ax.text(0.02, 0.98, "\n".join(notes), color="yellow", fontsize=7, transform=ax.transAxes, va="top")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(["scan", "heatmap, ground truth (blue), label map (green)"][col], fontsize=9)
            if col == 0:
                ax.set_ylabel(view_names[row])
    lower, upper = heatmap_display_range(shown["threshold"], shown["peak"])
    scale = ScalarMappable(Normalize(lower, upper), ListedColormap(inferno_table()[:, :3]))
    fig.colorbar(scale, ax=axes[:, 1], fraction=0.04, pad=0.02, label=f"anomaly score (threshold {shown['threshold']:.3g})")
    fig.suptitle(title)
    return fig
