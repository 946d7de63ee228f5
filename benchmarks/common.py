"""Shared helpers for the benchmark scripts: case lists from ../shared/data and machine facts."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.methods import EvalCase


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, "
        f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}, "
        f"python {platform.python_version()}, {dt.date.today().isoformat()}"
    )


def ixi_test_cases(root: Path) -> list[EvalCase]:
    return [
        EvalCase(c.case_id, {"t1": c.images["t1"]}, None, c.brain_label, healthy=True)
        for c in datasets.ixi_cases("test", root)
    ]


def other_site_cases(root: Path) -> list[EvalCase]:
    return [EvalCase(c.case_id, dict(c.images), healthy=True) for c in datasets.other_site_cases(root)]


def brats_cases(root: Path) -> list[EvalCase]:
    return [EvalCase(c.case_id, dict(c.images), c.label) for c in datasets.brats_cases(root)]


def mslub_cases(root: Path) -> list[EvalCase]:
    return [EvalCase(c.case_id, dict(c.images), c.label) for c in datasets.mslub_cases(root)]


def require_data() -> Path:
    root = datasets.data_root()
    if not (root / "ixi-t1").is_dir():
        raise SystemExit(f"shared data not found at {root}; set LATENT_ANOMALY_DATA")
    return root
