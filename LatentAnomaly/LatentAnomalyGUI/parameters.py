"""The module's parameter node: what the GUI shows, saved with the scene. Needs Slicer (imports ``slicer``).

Widgets in ``Resources/UI/LatentAnomaly.ui`` carry a ``SlicerParameterName`` property naming one of
these fields, and ``connectGui`` keeps both in sync. ``threshold`` is *not* bound to the slider
in the .ui: Slicer's slider connector needs a fixed range, and the heatmap's range is only known
after a detection, so the widget syncs that one by hand.
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Union

from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper

from .command import DEVICES, SKULL_MODES


@parameterNodeWrapper
class LatentAnomalyParameterNode:
    """
    inputVolume - the T1-weighted brain MRI to examine.
    heatmapVolume - anomaly score per voxel (output; higher = more unusual than the healthy training scans).
    labelVolume - flagged regions (output; 0/1): those the model's calibrated rule keeps, or every region above the
        voxel threshold once the slider re-thresholds the heatmap.
    modelPath - model bundle folder; empty means the bundled default model.
    scorer - scorer inside the bundle; empty means the bundle's default.
    device - where the model runs; auto falls back to CPU without a usable GPU.
    skullMode - whether the scan is skull-stripped; auto decides from the scan.
    overrideThreshold - use ``threshold`` instead of the calibrated voxel threshold when detecting.
    threshold - voxel threshold (also what the slider re-thresholds the loaded heatmap with).
    createSegmentation - also convert the label map to a segmentation (for editing and DICOM SEG export).
    alpha - false-positive rate of the subject flag (``--alpha``).
    patientAge - years, for age-matched p-values (``--age``); -1 means unknown (p-values against every calibration scan).
    heatmapOpacity - opacity of the heatmap over the scan in the slice views (0 hidden, 1 opaque).
    groundTruth - optional lesion label map or segmentation; Dice, AUROC and AUPRC are shown when set.
        (``typing.Union`` with ``None``, the form Slicer's wrapper documents for a combo box of several node types.)
    """

    inputVolume: vtkMRMLScalarVolumeNode
    heatmapVolume: vtkMRMLScalarVolumeNode
    labelVolume: vtkMRMLLabelMapVolumeNode
    modelPath: pathlib.Path
    scorer: str
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    skullMode: Annotated[str, Choice(list(SKULL_MODES))] = "auto"
    overrideThreshold: bool = False
    threshold: float = 0.0
    createSegmentation: bool = False
    alpha: Annotated[float, WithinRange(0.001, 0.5)] = 0.05
    patientAge: Annotated[float, WithinRange(-1.0, 130.0)] = -1.0
    heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    groundTruth: Union[vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode, None]  # noqa: UP007
