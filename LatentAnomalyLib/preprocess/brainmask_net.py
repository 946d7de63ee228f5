"""The brain-extraction network and its input scaling, free of SimpleITK so training can run anywhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STRIPPED_MAX_ML = 2500.0  # measured: stripped brains 1050-1730 mL, IXI heads with skull 3500-4800 mL


@dataclass(frozen=True)
class BrainMaskConfig:
    """Brain-extraction settings stored in the bundle."""

    spacing: float = 4.0
    features: tuple[int, ...] = (8, 16, 32, 64, 64, 8)
    stripped_max_ml: float = STRIPPED_MAX_ML
    foreground_fraction: float = 0.02


def build_net(config: BrainMaskConfig) -> torch.nn.Module:
    """MONAI's 3D ``BasicUNet`` (default layers), as rebuilt without importing MONAI in ``encoders.blocks``."""
    from ..encode.blocks import BasicUNet

    return BasicUNet(in_channels=1, out_channels=1, features=tuple(config.features))


def head_intensity_scale(array: np.ndarray) -> float:
    """The 99.5th percentile of the non-zero voxels, used to put heads on a 0..1 scale."""
    values = array[array > 0]
    if values.size == 0:
        return 1.0
    return float(np.percentile(values, 99.5)) or 1.0


def net_input(array: np.ndarray) -> np.ndarray:
    """Scale a 4 mm working array for the network (same function in training and inference)."""
    array = array.astype(np.float32)
    return np.clip(array / head_intensity_scale(array), 0.0, 1.5)


def predict_array(net: torch.nn.Module, array: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Brain probability for a scaled 4 mm array (padded to a multiple of 16 and cropped back)."""
    pads = [(0, (-s) % 16) for s in array.shape]
    padded = np.pad(array, pads)
    with torch.inference_mode():
        logits = net(torch.from_numpy(padded)[None, None].to(device))
    prob = torch.sigmoid(logits)[0, 0].float().cpu().numpy()
    return prob[tuple(slice(0, s) for s in array.shape)]
