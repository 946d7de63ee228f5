"""Helpers for the module's Slicer self-test that need no Slicer: find the sample scan, compare geometry."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

SAMPLE_ENV = "LATENT_ANOMALY_SAMPLE"
SAMPLE_RELATIVE = Path("Testing") / "Data" / "IXI_sample_T1.nii.gz"


def find_sample_scan(
    start: str | os.PathLike[str], env: Mapping[str, str] | None = None, levels: int = 6
) -> Path | None:
    """``$LATENT_ANOMALY_SAMPLE`` if it names a file, else ``Testing/Data/IXI_sample_T1.nii.gz`` above ``start``.

    The installed module does not know where its source tree is; from the source tree (or a build
    next to it) the sample is found by walking up. There is no download fallback.
    """
    env = os.environ if env is None else env
    explicit = env.get(SAMPLE_ENV, "").strip()
    if explicit and Path(explicit).is_file():
        return Path(explicit)
    folder = Path(start).resolve()
    if folder.is_file():
        folder = folder.parent
    for candidate in [folder, *folder.parents][:levels]:
        if (candidate / SAMPLE_RELATIVE).is_file():
            return candidate / SAMPLE_RELATIVE
    return None


def _flat(values: Sequence) -> list[float]:
    out: list[float] = []
    for value in values:
        if isinstance(value, list | tuple):
            out.extend(_flat(value))
        else:
            out.append(float(value))
    return out


def geometry_mismatches(
    expected: Mapping[str, Sequence], actual: Mapping[str, Sequence], tolerance: float = 1e-4
) -> list[str]:
    """Keys ('dimensions', 'spacing', 'origin', 'ijkToRas', ...) whose values differ beyond ``tolerance``."""
    problems = []
    for key, want in expected.items():
        if key not in actual:
            problems.append(f"{key}: missing")
            continue
        a, b = _flat(want), _flat(actual[key])
        if len(a) != len(b) or any(abs(x - y) > tolerance * max(1.0, abs(x)) for x, y in zip(a, b, strict=True)):
            problems.append(f"{key}: expected {list(want)}, got {list(actual[key])}")
    return problems
