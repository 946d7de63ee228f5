"""Encoder training checkpoints, so an interrupted encoder stage resumes at its last finished epoch.

``train_encoder`` writes one after every epoch (first process only; a new folder replaces the old one by
a rename, so a kill leaves either the previous or the new checkpoint) and every process reads it on
resume. Data, not code: tensors (model weights and buffers, optimiser moments, the augmentation and
global torch RNG states) in ``tensors.safetensors``; everything else (epoch counters, loss history, the
scans still in training, the outlier filter, scheduler and numpy RNG states) in ``state.json``. A
checkpoint carries a fingerprint of the training arrays and configuration: one written for other inputs
is ignored, and training starts over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE, TENSORS = "state.json", "tensors.safetensors"


def fingerprint(images: np.ndarray, masks: np.ndarray, *configs: Any) -> str:
    """What a checkpoint is valid for: the arrays (subsampled) and the configurations."""
    digest = hashlib.sha256()
    digest.update(repr(images.shape).encode())
    digest.update(np.ascontiguousarray(np.asarray(images)[:, ::4, ::4, ::4], dtype=np.float32).tobytes())
    digest.update(np.packbits(np.asarray(masks, dtype=bool)).tobytes())
    digest.update(json.dumps([asdict(c) for c in configs], sort_keys=True, default=str).encode())
    return digest.hexdigest()


@dataclass
class Progress:
    """Where training stood after an epoch (besides the tensors)."""

    epoch: int
    planned: int
    active: list[int]
    history: list[dict[str, float]]
    outliers: dict[str, Any] | None
    rng: dict[str, Any]
    patches: dict[str, Any]


def save(
    folder: Path,
    key: str,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    progress: Progress,
) -> None:
    """Write the checkpoint to ``folder`` (replacing any previous one)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimiser.state_dict()
    for index, entries in opt["state"].items():
        for name, value in entries.items():
            tensors[f"opt.{index}.{name}"] = torch.as_tensor(value).cpu().contiguous()
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    state = {
        "fingerprint": key,
        "progress": asdict(progress),
        "param_groups": opt["param_groups"],
        "scheduler": scheduler.state_dict(),
    }
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(tensors, str(staging / TENSORS))
    (staging / STATE).write_text(json.dumps(state) + "\n")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def peek(folder: Path, key: str) -> Progress | None:
    """The checkpoint's progress if one exists for these inputs, else None."""
    path = Path(folder) / STATE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if state.get("fingerprint") != key:
        return None
    return Progress(**state["progress"])


def restore(
    folder: Path, model: torch.nn.Module, optimiser: torch.optim.Optimizer, scheduler: Any, generator: torch.Generator
) -> None:
    """Load weights, optimiser, scheduler and RNG states into freshly built objects of the same shapes."""
    from safetensors.torch import load_file

    folder = Path(folder)
    state = json.loads((folder / STATE).read_text())
    tensors = load_file(str(folder / TENSORS))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    moments: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, index, entry = name.split(".", 2)
            moments.setdefault(int(index), {})[entry] = value
    optimiser.load_state_dict({"state": moments, "param_groups": state["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])

