"""Tests of LatentAnomalyLib.evaluation.report: self-contained HTML, embedded PNGs, slice choice, atomic write."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import LatentAnomalyLib.evaluation.report as report_module
from LatentAnomalyLib.evaluation.metrics import roc_pr_curves, voxel_metrics
from LatentAnomalyLib.evaluation.report import figure_to_data_uri, montage, plot_curves, plot_histograms, write_report
from LatentAnomalyLib.outputs.montage import choose_slices

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHAPE = (20, 30, 25)


def _decode_png(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix) :], validate=True)
    assert data.startswith(PNG_SIGNATURE)
    return data


@pytest.fixture
def case() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 10.0, size=SHAPE)
    labels = np.zeros(SHAPE, dtype=bool)
    labels[8:13, 10:16, 5:10] = True  # cube lesion
    heatmap = np.abs(rng.normal(size=SHAPE)) + 3.0 * labels
    prediction = heatmap > 2.5
    return {"image": image, "labels": labels, "heatmap": heatmap, "prediction": prediction}


def test_choose_slices_picks_largest_lesion() -> None:
    labels = np.zeros(SHAPE, dtype=bool)
    labels[2:4, 2:4, 2:4] = True  # small lesion
    labels[10:17, 20:27, 12:19] = True  # largest lesion, centre (13, 23, 15)
    heatmap = np.zeros(SHAPE)
    heatmap[1, 1, 1] = 10.0  # the maximum lies elsewhere and must be ignored
    assert choose_slices(labels, heatmap) == (13, 23, 15)


def test_choose_slices_diagonal_component_and_fallbacks() -> None:
    labels = np.zeros(SHAPE, dtype=bool)
    for i in range(9):  # a diagonal chain: one 26-connected component of 9 voxels, centre (9, 9, 9)
        labels[5 + i, 5 + i, 5 + i] = True
    labels[15:17, 20:22, 1:3] = True  # 8 voxels: largest only if diagonal neighbours were split
    assert choose_slices(labels, np.zeros(SHAPE)) == (9, 9, 9)
    # an L-shaped lesion whose centroid is outside it: the slice still passes through the lesion
    ell = np.zeros(SHAPE, dtype=bool)
    ell[10, 2:20, 2] = True
    ell[10, 2, 2:20] = True
    assert ell[choose_slices(ell, np.zeros(SHAPE))]
    heatmap = np.zeros(SHAPE)
    heatmap[4, 7, 9] = 1.0
    assert choose_slices(None, heatmap) == (4, 7, 9)
    assert choose_slices(np.zeros(SHAPE, dtype=bool), heatmap) == (4, 7, 9)


def test_figure_to_data_uri_closes_pyplot_figure() -> None:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    number = fig.number
    _decode_png(figure_to_data_uri(fig))
    assert not plt.fignum_exists(number)


def test_montage_handles_missing_masks(case: dict[str, np.ndarray]) -> None:
    empty = np.zeros(SHAPE, dtype=bool)
    _decode_png(montage(case["image"], case["heatmap"], None, None, "no masks"))
    _decode_png(montage(case["image"], case["heatmap"], empty, empty, "empty masks", spacing=(3.0, 1.0, 1.0)))
    full = np.ones(SHAPE, dtype=bool)
    _decode_png(montage(case["image"], np.zeros(SHAPE), full, full, "full masks, flat heatmap", vmax=None))
    with pytest.raises(ValueError):
        montage(case["image"], case["heatmap"][:-1], None, None, "bad shape")


def test_write_report_self_contained(tmp_path: Path, case: dict[str, np.ndarray]) -> None:
    scores, labels = case["heatmap"].ravel(), case["labels"].ravel()
    rng = np.random.default_rng(1)
    other = scores + rng.normal(scale=1.5, size=scores.size)
    curves = {"latent-ocsvm": roc_pr_curves(scores, labels), "residual": roc_pr_curves(other, labels)}
    metrics = voxel_metrics(scores, labels, threshold=2.5)
    hist = plot_histograms(
        {"latent-ocsvm": scores[~labels], "residual": other[~labels]},
        {"latent-ocsvm": scores[labels], "residual": other[labels]},
        threshold={"latent-ocsvm": 2.5, "residual": None},
    )
    images = [plot_curves(curves), hist, montage(**case, title="case 001", spacing=(2.0, 1.0, 1.0))]
    sections = [
        {"heading": "Voxel metrics", "text": "Oracle <best> Dice uses labels; see https://example.org & co.",
         "table": {"columns": ["method", "AUROC", "Dice", "n"],
                   "rows": [["latent-ocsvm", metrics["auroc"], metrics["dice"], 7], ["residual", 0.12345, None, 3]]}},
        {"heading": "Figures", "images": images},
    ]  # fmt: skip
    out = write_report(tmp_path / "sub" / "report.html", "Evaluation & results", sections)
    assert out == tmp_path / "sub" / "report.html" and out.is_file()
    text = out.read_text(encoding="utf-8")
    assert "<h2>Voxel metrics</h2>" in text and "<h2>Figures</h2>" in text
    assert "Evaluation &amp; results" in text and "Generated on" in text
    assert "&lt;best&gt;" in text and "<best>" not in text
    assert f"<td>{metrics['auroc']:.3f}</td>" in text and "<td>0.123</td>" in text
    assert "<td>–</td>" in text and "<td>7</td>" in text
    uris = re.findall(r'src="(data:image/png;base64,[^"]+)"', text)
    assert len(uris) == 3
    for uri in uris:
        _decode_png(uri)
    lowered = text.lower()
    for forbidden in ("http://", "https://", "<script src", "<link"):
        assert forbidden not in lowered
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left behind


def test_write_report_atomic_replace_and_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.html"
    write_report(target, "first-title", [{"heading": "one"}])
    write_report(target, "second", [{"heading": "two", "table": {"columns": ["a"], "rows": [[1.0]]}}])
    text = target.read_text(encoding="utf-8")
    assert "second" in text and "first-title" not in text
    with pytest.raises(ValueError):
        write_report(target, "third", [{"images": ["https://example.org/x.png"]}])
    assert "second" in target.read_text(encoding="utf-8")  # the old report is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(report_module.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_report(target, "fourth", [{"heading": "four"}])
    assert "second" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # the temp file was removed


def test_histograms_subsample_large_and_missing_method() -> None:
    rng = np.random.default_rng(2)
    big = rng.normal(size=600_000)
    uri = plot_histograms({"a": big, "b": big[:10]}, {"a": big[:1000] + 2.0}, threshold={"a": 1.0})
    _decode_png(uri)


def test_montage_viewing_conventions(case: dict[str, np.ndarray]) -> None:
    import io

    from matplotlib.image import imread

    from LatentAnomalyLib.outputs.montage import display_settings
    from LatentAnomalyLib.outputs.viewing import LABEL_OUTLINE_RGB, TRUTH_OUTLINE_RGB, scan_window

    image = case["image"].copy()
    brain = np.zeros(SHAPE, dtype=bool)
    brain[3:17, 4:26, 3:22] = True
    image[~brain] = 5000.0  # a bright skull: a window over all voxels would wash the brain out
    heatmap = np.where(brain, case["heatmap"], 0.0)
    shown = display_settings(image, heatmap, case["prediction"], brain=brain)
    assert (shown["low"], shown["high"]) == scan_window(image, brain) and shown["high"] < 1000.0
    assert shown["threshold"] == heatmap[case["prediction"]].min() and shown["peak"] == heatmap.max()
    assert display_settings(image, heatmap, None)["high"] < 1000.0  # brain taken from the scored (non-zero) voxels
    assert display_settings(image, heatmap, None, threshold=1.5, vmax=4.0)["threshold"] == 1.5
    assert display_settings(image, heatmap, None, threshold=1.5, vmax=4.0)["peak"] == 4.0

    png = imread(io.BytesIO(_decode_png(montage(image, heatmap, case["labels"], case["prediction"], "c", brain=brain))))
    rgb = png[..., :3]

    def near(colour: tuple[float, float, float]) -> int:
        return int((np.abs(rgb - np.asarray(colour)).max(axis=-1) < 0.12).sum())

    assert near(TRUTH_OUTLINE_RGB) > 20 and near(LABEL_OUTLINE_RGB) > 20  # both outlines drawn
    warm = (rgb[..., 0] - rgb[..., 2] > 0.25) & (rgb[..., 0] > 0.5)  # Inferno orange over the grey scan
    assert warm.sum() > 50


def test_report_montage_arrays_are_reoriented_to_lps():
    """A scan stored with x running right and z down is shown the same way up as an LPS scan."""
    import SimpleITK as sitk

    from LatentAnomalyLib.evaluation.outputs import _as_lps

    values = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (z, y, x)
    reference = sitk.GetImageFromArray(values)
    reference.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, -1))  # x to the right (R), z downwards (I): "RPI"
    oriented = _as_lps(reference, values)
    assert np.array_equal(oriented, values[::-1, :, ::-1])
    mask = values > 10
    assert np.array_equal(_as_lps(reference, mask), mask[::-1, :, ::-1]) and _as_lps(reference, mask).dtype == bool
    plain = sitk.GetImageFromArray(values)  # identity direction is LPS already
    assert np.array_equal(_as_lps(plain, values), values)
    assert _as_lps(reference, None) is None
