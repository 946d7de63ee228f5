"""Shared fixtures: the committed sample scans, the bundled model, and the shared data (optional)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "Testing" / "Data"
MODEL = Path(os.environ.get("LATENT_ANOMALY_MODEL", REPO / "models" / "latent-anomaly-t1"))


def shared_data() -> Path:
    return Path(os.environ.get("LATENT_ANOMALY_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data()
    if not (root / "ixi-t1").is_dir():
        pytest.skip(f"shared data not found at {root} (set LATENT_ANOMALY_DATA)")
    return root


@pytest.fixture(scope="session")
def ixi_sample() -> Path:
    return SAMPLES / "IXI_sample_T1.nii.gz"


@pytest.fixture(scope="session")
def mslub_sample() -> dict[str, Path]:
    return {k: SAMPLES / f"MSLUB_patient07_{k}.nii.gz" for k in ("T1", "FLAIR", "lesions")}


@pytest.fixture(scope="session")
def model():
    from LatentAnomalyLib.bundle.model import Model

    return Model.load(MODEL)


@dataclass(frozen=True)
class DetectRun:
    """One in-process ``latent-anomaly detect`` of the session: its output folder (shared: copy it before changing
    anything in it), exit code and standard output."""

    folder: Path
    code: int
    stdout: str


@pytest.fixture(scope="session")
def detect_run(tmp_path_factory) -> Callable[..., DetectRun]:
    """``detect(scan, *options)``: ``latent-anomaly detect SCAN --device cpu --progress none OPTIONS`` run in this
    process once per session and (scan, options), for tests about its outputs rather than about the process."""
    runs: dict[tuple[str, tuple[str, ...]], DetectRun] = {}

    def detect(scan: Path, *options: str) -> DetectRun:
        key = (str(Path(scan).resolve()), options)
        if key not in runs:
            from LatentAnomalyLib.cli.main import main

            out = tmp_path_factory.mktemp("detect-run") / "out"
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = main(["detect", key[0], "--out", str(out), "--device", "cpu", "--progress", "none", *options])
            runs[key] = DetectRun(out, code, printed.getvalue())
        return runs[key]

    return detect
