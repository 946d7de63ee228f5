"""A self-contained HTML report of an anomaly-detection evaluation.

Why self-contained: the report must open in any browser on a machine with no network (hospital workstations,
air-gapped clusters) and survive being e-mailed or archived as one file. So every figure is embedded as a base64 PNG
data URI, the CSS is inline, there is no JavaScript and no external reference of any kind (no ``http://``, no
``<link>``, no ``<script src>``).

Figures are drawn on ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never through ``pyplot``: no
display is needed, the global backend of the calling program is left alone, and no figure is kept alive in pyplot's
registry.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import ndimage

__all__ = ["choose_slices", "figure_to_data_uri", "montage", "plot_curves", "plot_histograms", "write_report"]

_DATA_URI_PREFIX = "data:image/png;base64,"
_MAX_HIST_VALUES = 200_000
_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: .6em 0; }
p.text { white-space: pre-wrap; } .stamp { color: #777; font-size: .85em; }
"""


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def figure_to_data_uri(fig: Any) -> str:
    """Render a matplotlib figure to a ``data:image/png;base64,...`` URI and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    pyplot = sys.modules.get("matplotlib.pyplot")  # only a pyplot-managed figure needs closing there
    if pyplot is not None:
        pyplot.close(fig)
    fig.clear()
    return _DATA_URI_PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")


def plot_curves(curves: dict[str, dict[str, np.ndarray]]) -> str:
    """ROC (left) and precision-recall (right) curves, one line per method, as returned by ``roc_pr_curves``."""
    fig = _new_figure(11.0, 4.8)
    ax_roc, ax_pr = fig.subplots(1, 2)
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="chance")
    for name, c in curves.items():
        ax_roc.plot(c["fpr"], c["tpr"], label=name)
        ax_pr.plot(c["recall"], c["precision"], label=name)
    ax_roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is ax_roc else "upper right", fontsize="small")
    return figure_to_data_uri(fig)


def _subsample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size > _MAX_HIST_VALUES:
        v = v[rng.choice(v.size, _MAX_HIST_VALUES, replace=False)]
    return v


def plot_histograms(
    healthy: dict[str, np.ndarray],
    lesion: dict[str, np.ndarray],
    threshold: dict[str, float | None] | None = None,
) -> str:
    """Density histograms of healthy vs lesion voxel scores, one panel per method, threshold as a vertical line."""
    names = list(dict.fromkeys([*healthy, *lesion]))
    ncols = max(1, min(3, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig = _new_figure(4.2 * ncols, 3.2 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    for ax, name in zip(axes, names, strict=False):
        rng = np.random.default_rng(0)
        h = _subsample(healthy.get(name, np.empty(0)), rng)
        les = _subsample(lesion.get(name, np.empty(0)), rng)
        both = np.concatenate([h, les])
        if both.size:
            lo, hi = float(both.min()), float(both.max())
            bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 81)
            for vals, colour, label in ((h, "tab:blue", "healthy"), (les, "tab:red", "lesion")):
                if vals.size:
                    ax.hist(vals, bins=bins, density=True, alpha=0.5, color=colour, label=f"{label} (n={vals.size})")
        t = (threshold or {}).get(name)
        if t is not None:
            ax.axvline(float(t), color="black", linestyle="--", linewidth=1.0, label=f"threshold {float(t):.3g}")
        ax.set(title=name, xlabel="anomaly score", ylabel="density")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    return figure_to_data_uri(fig)


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


def _contour(ax: Any, mask: np.ndarray, colour: str) -> None:
    """Outline a 2D mask; zero padding closes contours of regions touching the border, axis limits are kept."""
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    padded = np.pad(mask.astype(np.float32), 1)
    ys = np.arange(-1, mask.shape[0] + 1)
    xs = np.arange(-1, mask.shape[1] + 1)
    ax.contour(xs, ys, padded, levels=[0.5], colors=colour, linewidths=1.0)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


def _views(volume: np.ndarray, zyx: tuple[int, int, int]) -> list[np.ndarray]:
    z, y, x = zyx
    return [volume[z], volume[:, y, :], volume[:, :, x]]


def montage(
    image: np.ndarray,
    heatmap: np.ndarray,
    labels: np.ndarray | None,
    prediction: np.ndarray | None,
    title: str,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    vmax: float | None = None,
) -> str:
    """Axial, coronal and sagittal rows through the largest lesion (or the heatmap maximum); columns: scan, heatmap
    overlay, ground-truth contour (red), predicted contour (cyan). Arrays are (z, y, x); ``spacing`` is (sz, sy, sx).
    """
    image = np.asarray(image, dtype=np.float64)
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.shape != image.shape or image.ndim != 3:
        raise ValueError(f"image and heatmap must be 3D arrays of one shape, got {image.shape} and {heatmap.shape}")
    masks = {}
    for key, mask in (("labels", labels), ("prediction", prediction)):
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.shape != image.shape:
                raise ValueError(f"{key} shape {mask.shape} differs from image shape {image.shape}")
        masks[key] = mask
    zyx = choose_slices(masks["labels"], heatmap)
    sz, sy, sx = (float(s) for s in spacing)
    finite = image[np.isfinite(image)]
    i_lo, i_hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
    if vmax is None:
        hf = heatmap[np.isfinite(heatmap)]
        vmax = float(np.percentile(hf, 99.5)) if hf.size else 1.0
    if not vmax > 0:
        vmax = 1.0
    view_names = [f"axial z={zyx[0]}", f"coronal y={zyx[1]}", f"sagittal x={zyx[2]}"]
    aspects = [sy / sx, sz / sx, sz / sy]
    origins = ["upper", "lower", "lower"]
    columns = ["scan", "heatmap", "ground truth", "prediction"]

    fig = _new_figure(13.0, 10.0)
    axes = fig.subplots(3, 4, squeeze=False)
    images, heats = _views(image, zyx), _views(heatmap, zyx)
    contours = {k: (_views(m, zyx) if m is not None else None) for k, m in masks.items()}
    for row in range(3):
        for col in range(4):
            ax = axes[row, col]
            kw = {"aspect": aspects[row], "origin": origins[row], "interpolation": "nearest"}
            ax.imshow(images[row], cmap="gray", vmin=i_lo, vmax=i_hi, **kw)
            if col == 1:
                im = ax.imshow(heats[row], cmap="inferno", alpha=0.6, vmin=0.0, vmax=vmax, **kw)
            elif col >= 2:
                key, colour = ("labels", "red") if col == 2 else ("prediction", "cyan")
                views = contours[key]
                if views is None or not views[row].any():
                    label = "none" if views is None else "empty"
                    ax.text(0.02, 0.98, label, color="yellow", fontsize=8, transform=ax.transAxes, va="top")
                else:
                    _contour(ax, views[row], colour)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col])
            if col == 0:
                ax.set_ylabel(view_names[row])
        fig.colorbar(im, ax=axes[row, 1], fraction=0.046, pad=0.02)
    fig.suptitle(title)
    return figure_to_data_uri(fig)


def _format_cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return _escape(str(value))


def _escape(text: str) -> str:
    """HTML-escape; also break ``://`` so the file holds no URL-looking reference (it displays the same)."""
    return html.escape(text).replace("://", "&#58;//")


def _render_section(section: dict[str, Any]) -> str:
    parts = ["<section>"]
    if section.get("heading"):
        parts.append(f"<h2>{_escape(str(section['heading']))}</h2>")
    if section.get("text"):
        parts.append(f'<p class="text">{_escape(str(section["text"]))}</p>')
    table = section.get("table")
    if table:
        head = "".join(f"<th>{_escape(str(c))}</th>" for c in table.get("columns", []))
        rows = "".join(
            "<tr>" + "".join(f"<td>{_format_cell(v)}</td>" for v in row) + "</tr>" for row in table.get("rows", [])
        )
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    for uri in section.get("images", []) or []:
        if not isinstance(uri, str) or not uri.startswith(_DATA_URI_PREFIX):
            raise ValueError("images must be PNG data URIs (data:image/png;base64,...) so the report is self-contained")
        payload = uri[len(_DATA_URI_PREFIX) :]
        if any(ch in payload for ch in "\"'<> "):
            raise ValueError("malformed image data URI")
        parts.append(f'<img src="{uri}" alt="figure">')
    parts.append("</section>")
    return "\n".join(parts)


def write_report(path: str | Path, title: str, sections: list[dict]) -> Path:
    """Write a single self-contained HTML file atomically (temp file in the same folder, then ``os.replace``).

    Each section may hold ``heading`` (str), ``text`` (str, escaped), ``table`` (``columns``: list of str, ``rows``:
    list of lists; floats shown with 3 decimals, ``None`` as "–") and ``images`` (PNG data URIs).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    body = "\n".join(_render_section(s) for s in sections)
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<h1>{_escape(title)}</h1>\n<p class="stamp">Generated on {_escape(stamp)}</p>\n{body}\n</body>\n</html>\n'
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(document)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
