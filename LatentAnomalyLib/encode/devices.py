"""Choosing where the networks run (the CPU fallback on out-of-memory is in :mod:`.encoding`)."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str) -> tuple[str, str | None]:
    """(device, message for the user or None). ``cuda`` without CUDA falls back with a message."""
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu", None
    if torch.cuda.is_available():
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but is not available; running on the CPU"
    return "cpu", None
