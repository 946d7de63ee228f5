"""The detection pipeline on committed real scans: geometry kept for any orientation and spacing."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.preprocess.geometry import resample


def _reorient(image: sitk.Image, code: str) -> sitk.Image:
    return sitk.DICOMOrient(image, code)


def _oblique(image: sitk.Image, degrees: float, spacing: float) -> sitk.Image:
    """Resample onto a rotated grid (an oblique acquisition) with a different voxel size."""
    rotation = np.asarray(sitk.VersorTransform((0.3, 0.2, 1.0), np.deg2rad(degrees)).GetMatrix()).reshape(3, 3)
    direction = np.asarray(image.GetDirection()).reshape(3, 3) @ rotation
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))
    extent = np.asarray(image.GetSize()) * np.asarray(image.GetSpacing())
    size = [int(e / spacing) for e in extent]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing([spacing] * 3)
    reference.SetDirection(direction.ravel().tolist())
    reference.SetOrigin((centre - direction @ (np.asarray(size) - 1) / 2 * spacing).tolist())
    return resample(image, reference)


def _same_geometry(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSize() == b.GetSize()
    assert np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    assert np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
    assert np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)


@pytest.fixture(scope="module")
def detector(model):
    return Detector(model, DetectOptions(device="cpu"))


@pytest.fixture(scope="module")
def ixi(ixi_sample):
    return read_image(ixi_sample)


@pytest.fixture(scope="module")
def native_run(detector, ixi_sample):
    """The IXI sample read and detected once for the module, with the file's bytes before and after."""
    before = ixi_sample.read_bytes()
    result = detector.detect(read_image(ixi_sample))
    return result, before, ixi_sample.read_bytes()


@pytest.fixture(scope="module")
def reoriented_runs(detector, ixi, native_run):
    """Image and detection per stored orientation of the IXI sample, each detected once for the module."""
    runs = {"native": (ixi, native_run[0])}
    for variant in ("RAS", "LPS", "oblique-1mm"):
        image = _oblique(ixi, 20, 1.0) if variant == "oblique-1mm" else _reorient(ixi, variant)
        runs[variant] = (image, detector.detect(image))
    return runs


@pytest.fixture(scope="module")
def mslub_run(detector, mslub_sample):
    """The MSLUB sample and its detection (the preprocessing inside it is used by several tests)."""
    image = read_image(mslub_sample["T1"])
    return image, detector.detect(image)


@pytest.mark.parametrize("variant", ["native", "RAS", "LPS", "oblique-1mm"])
def test_outputs_keep_input_geometry(reoriented_runs, variant):
    image, result = reoriented_runs[variant]
    _same_geometry(result.heatmap, image)
    _same_geometry(result.labelmap, image)
    labels = sitk.GetArrayFromImage(result.labelmap)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}
    heat = sitk.GetArrayFromImage(result.heatmap)
    assert np.all(heat[~result.preprocessed.native_mask] == 0)  # 0 outside the brain
    assert result.summary["flagged_fraction_of_brain"] < 0.05  # a healthy test-split scan
    assert 900 < result.summary["brain_volume_ml"] < 2200


def test_heatmap_does_not_depend_on_orientation(reoriented_runs):
    """The same head stored RAS or PSR gives the same heatmap once both are put on one grid."""
    native = reoriented_runs["native"][1].heatmap
    ras = reoriented_runs["RAS"][1].heatmap
    back = sitk.GetArrayFromImage(resample(ras, native, interpolator=sitk.sitkNearestNeighbor, antialias=False))
    ref = sitk.GetArrayFromImage(native)
    inside = (ref != 0) & (back != 0)
    assert inside.sum() > 10000
    assert np.corrcoef(ref[inside], back[inside])[0, 1] > 0.95


def test_input_image_is_not_modified(native_run):
    _, before, after = native_run
    assert after == before


def test_skull_stripped_mslub_goes_through_without_damage(mslub_run, mslub_sample):
    image, result = mslub_run
    assert result.summary["skull_stripped_input"] is True
    _same_geometry(result.heatmap, image)
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(mslub_sample["lesions"]))) > 0
    brain = result.preprocessed.native_mask
    assert (lesions & brain).sum() / lesions.sum() > 0.95  # lesions stay inside the extracted brain
    assert 900 < result.summary["brain_volume_ml"] < 2000


def test_all_scorers_in_one_pass(detector, ixi, model):
    results = detector.detect_scorers(ixi, list(model.scorers))
    assert set(results) == set(model.scorers)
    for name, result in results.items():
        assert result.summary["model"]["scorer"] == name
        assert np.isfinite(sitk.GetArrayFromImage(result.heatmap)).all()


def test_device_cuda_falls_back_with_a_message(model, ixi, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    detector = Detector(model, DetectOptions(device="cuda"))
    assert detector.device == "cpu"
    assert any("CUDA" in m for m in detector.messages)


def test_preprocessing_is_bit_reproducible_in_one_process(detector, mslub_run):
    """Registration runs single-threaded so evaluation and training (not only `detect`) repeat exactly."""
    image, result = mslub_run
    first, second = result.preprocessed, detector.preprocessor.run(image)  # the second run in this process
    assert first.transform.GetParameters() == second.transform.GetParameters()
    assert np.array_equal(first.image, second.image)


def test_mirrored_view_is_encoded_only_when_the_scorer_averages_over_it(detector, model, mslub_run):
    """The default scorer averages with the mirrored scan: detect must encode the mirrored image, the others not."""
    import dataclasses

    from LatentAnomalyLib.score.base import mirror_x, needs_mirror

    assert needs_mirror(model.scorers[model.default_scorer])  # the bundled default (model >= 1.3.0)
    pre = mslub_run[1].preprocessed
    both = detector.encode(pre, reconstruction=False, mirrored=True)
    flipped = detector.encode(dataclasses.replace(pre, image=mirror_x(pre.image)), False, False)
    assert np.allclose(both.mirrored_latent, flipped.latent, atol=1e-5)
    assert detector.encode(pre, reconstruction=False, mirrored=False).mirrored_latent is None
