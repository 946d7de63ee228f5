"""Results that the review tests open: `batch` on the two committed samples, computed once per session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("latent-anomaly")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "LatentAnomalyLib.cli"]


@pytest.fixture(scope="session")
def batch_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A batch folder (scores.csv, one exported case folder per scan) for the IXI and MSLUB samples, made by
    ``latent-anomaly batch`` run in this process."""
    from LatentAnomalyLib.cli.main import main

    out = tmp_path_factory.mktemp("review") / "batch"
    scans = [SAMPLES / "IXI_sample_T1.nii.gz", SAMPLES / "MSLUB_patient07_T1.nii.gz"]
    argv = ["batch", *map(str, scans), "--out", str(out), "--export", "all", "--progress", "none"]
    argv += ["--regions", "all"]  # the voxel-threshold label maps: the default (calibrated) maps of both are empty
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def low_alpha_case(tmp_path_factory: pytest.TempPathFactory, detect_run) -> Path:
    """`detect` on the IXI sample at alpha 0.005 (< 1/119: summary.json's ``subject_threshold`` is null; the
    calibrated label map keeps no region, both regions are in ``regions_not_kept``), run in this process."""
    done = detect_run(SAMPLES / "IXI_sample_T1.nii.gz", "--alpha", "0.005")
    assert done.code == 0
    out = tmp_path_factory.mktemp("review-low-alpha") / "IXI_sample_T1"
    shutil.copytree(done.folder, out)
    return out
