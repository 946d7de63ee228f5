"""Checks on the shared research data (skipped with a reason when ../shared/data is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def detector(model):
    return Detector(model, DetectOptions(device="cpu"))


def test_brats_t1_scores_higher_inside_the_tumour(detector, data_root):
    case = datasets.brats_cases(data_root)[3]  # a CBICA case: 1 mm, skull-stripped, SRI24 space
    image = read_image(case.images["t1"])
    result = detector.detect(image)
    heat = sitk.GetArrayFromImage(result.heatmap)
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
    brain = result.preprocessed.native_mask
    assert result.summary["skull_stripped_input"] is True
    assert heat[tumour & brain].mean() > heat[brain & ~tumour].mean() + 0.5


def test_healthy_ixi_test_scans_flag_few_voxels(detector, data_root):
    flagged = []
    for case in datasets.ixi_cases("test", data_root)[1:4]:
        result = detector.detect(read_image(case.images["t1"]))
        assert result.summary["skull_stripped_input"] is False
        flagged.append(result.summary["flagged_fraction_of_brain"])
    assert np.median(flagged) <= 0.015


def test_brain_extraction_dice_on_ixi_test_scans(detector, data_root):
    dices = []
    for case in datasets.ixi_cases("test", data_root)[:3]:
        image = read_image(case.images["t1"])
        mask, stripped = detector.preprocessor.brain_mask(image, "auto")
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case.brain_mask))) > 0
        assert not stripped
        dices.append(2 * (mask & truth).sum() / (mask.sum() + truth.sum()))
    assert min(dices) >= 0.9


def _tiny_training_argv(tmp_path, data_root, name: str) -> tuple[list[str], Path]:
    """CLI arguments of a tiny training run (2 scans per split part, 1 epoch) into ``tmp_path / name``.

    The brain-extraction network is taken from the bundled model (one epoch cannot train it), so
    the brainmask stage is skipped and preprocess, encoder, scorers and bundle stages run for real.
    """
    import shutil

    from tests.conftest import MODEL

    work = tmp_path / f"{name}.work"
    work.mkdir()
    shutil.copy(MODEL / "brainmask.safetensors", work / "brainmask.safetensors")
    out = tmp_path / name
    argv = [
        "train",
        "--config",
        "configs/default_t1.json",
        "--out",
        str(out),
        "--workdir",
        str(work),
        "--device",
        "cpu",
        "--max-cases",
        "2",
        "--data",
        str(data_root),
        "--override",
        "brainmask_train.epochs=1",
        "--override",
        "encoder_train.epochs=1",
        "--override",
        'scorers=[{"name": "gaussian"}, {"name": "ocsvm"}]',
        "--override",
        'default_scorer="gaussian"',
    ]
    return argv, out


@pytest.mark.slow
def test_train_command_builds_a_working_bundle_and_reproduces_it(tmp_path, data_root, ixi_sample, capsys):
    """The tiny training run through the CLI, twice: the second bundle is the first, file for file.

    Only metrics.json (it records stage durations) and the manifest (creation time, and the
    metrics file's checksum) may differ; weights, scorer arrays, calibration and configuration
    must be bit-identical, which is what "running the training command again reproduces it" means.
    """
    from LatentAnomalyLib.cli.main import main

    argv, out = _tiny_training_argv(tmp_path, data_root, "first")
    assert main(argv) == 0
    assert main(["info", "--model", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("wrote bundle")[-1].split("\n", 1)[1])
    assert info["scorers"] == ["gaussian", "ocsvm"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert "encoder" in metrics and "scorers" in metrics
    assert set(metrics["scorers"]) >= {"latent_space", "gaussian", "ocsvm"}

    argv, again = _tiny_training_argv(tmp_path, data_root, "second")
    assert main(argv) == 0
    first = json.loads((out / "manifest.json").read_text())["files"]
    second = json.loads((again / "manifest.json").read_text())["files"]
    assert set(first) == set(second)
    differing = sorted(name for name in first if first[name] != second[name])
    assert differing == ["metrics.json"]
