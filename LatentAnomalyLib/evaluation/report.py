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

from ..outputs.montage import montage_figure

__all__ = ["figure_to_data_uri", "montage", "plot_curves", "plot_histograms", "write_report"]

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


def montage(
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
) -> str:
    """:func:`LatentAnomalyLib.outputs.montage.montage_figure` as a PNG data URI: per view, the windowed scan, and the scan
    with the heatmap overlaid and the ground-truth (blue) and label-map (green) outlines."""
    fig = montage_figure(
        image, heatmap, labels, prediction, title, spacing, vmax, threshold=threshold, brain=brain
    )
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
