"""Shared helpers for the benchmark scripts: where ../shared/data is and machine facts."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

from LatentAnomalyLib.evaluation import datasets


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, "
        f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}, "
        f"python {platform.python_version()}, {dt.date.today().isoformat()}"
    )


def require_data() -> Path:
    root = datasets.data_root()
    if not (root / "ixi-t1").is_dir():
        raise SystemExit(f"shared data not found at {root}; set LATENT_ANOMALY_DATA")
    return root
