"""Shared fixtures: the committed sample scans, the bundled model, and the shared data (optional)."""

from __future__ import annotations

import os
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
