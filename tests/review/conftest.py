"""Results that the review tests open: `batch` on the two committed samples, computed once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("latent-anomaly")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "LatentAnomalyLib.cli"]


@pytest.fixture(scope="session")
def batch_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A batch folder (scores.csv, one exported case folder per scan) for the IXI and MSLUB samples."""
    out = tmp_path_factory.mktemp("review") / "batch"
    scans = [SAMPLES / "IXI_sample_T1.nii.gz", SAMPLES / "MSLUB_patient07_T1.nii.gz"]
    command = [*cli(), "batch", *map(str, scans), "--out", str(out), "--export", "all", "--progress", "none"]
    command += ["--regions", "all"]  # the voxel-threshold label maps: model 1.5.0's default maps of both are empty
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def low_alpha_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`detect` on the IXI sample at alpha 0.005 (< 1/119: summary.json's ``subject_threshold`` is null; the
    calibrated label map keeps no region, both regions are in ``regions_not_kept``)."""
    out = tmp_path_factory.mktemp("review-low-alpha") / "IXI_sample_T1"
    command = [*cli(), "detect", str(SAMPLES / "IXI_sample_T1.nii.gz"), "--out", str(out), "--alpha", "0.005"]
    done = subprocess.run([*command, "--progress", "none"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out
