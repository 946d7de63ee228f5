"""Bring a detection's files into the scene as nodes, on the input's grid and under the input's transform.

:class:`ResultLoader` reads ``heatmap.nii.gz`` and ``labelmap.nii.gz`` with the volumes logic (the label map as a
label map node), forgets their temporary files so a saved scene carries the data, puts them under the input's
parent transform, stores the summary on the label map node, shows them and centres the views on the largest region
shown, else the strongest near miss, else the hottest voxel. A failure removes every node it added:
the scene is left as it was. Works on any MRML scene; ``slicer`` is imported inside the methods it calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .detection import DetectionOutcome
from .display import ResultDisplay, Shown
from .nodes import SceneNodes
from .review import MODEL_ATTRIBUTE, SUMMARY_ATTRIBUTE, ReviewTools


class ResultLoader:
    """Loads results into ``nodes.scene`` and shows them through ``display``."""

    def __init__(self, nodes: SceneNodes, display: ResultDisplay) -> None:
        self.nodes = nodes
        self.display = display
        self.lastShown: Shown | None = None
        self.lastFocus = ""  # which point the views opened on (see ReviewTools.focusPoint)

    def exportInput(self, volumeNode: Any, path: str | Path) -> Path:
        """Write the input volume for the CLI (NRRD, uncompressed); the node keeps its own storage."""
        return self.nodes.writeNode(volumeNode, path, compress=False)

    def loadResults(self, outcome: DetectionOutcome, inputVolume: Any) -> tuple[Any, Any]:
        """(heatmap node, label map node) read from the outcome's files and shown over ``inputVolume``."""
        name = inputVolume.GetName()
        added: list[Any] = []
        try:
            heatmap = self.nodes.readVolume(outcome.heatmapPath, f"{name} anomaly heatmap")
            added.append(heatmap)
            label = self.nodes.readVolume(outcome.labelmapPath, f"{name} anomaly labels", labelmap=True)
            added.append(label)
            for node in (heatmap, label):
                self.nodes.detachStorage(node)
                node.SetAndObserveTransformNodeID(inputVolume.GetTransformNodeID())
            label.SetAttribute(SUMMARY_ATTRIBUTE, json.dumps(outcome.summary))
            if outcome.modelPath is not None:
                label.SetAttribute(MODEL_ATTRIBUTE, str(outcome.modelPath))
            self.lastShown = self.display.show(inputVolume, heatmap, label, float(outcome.summary["voxel_threshold"]))
            point, self.lastFocus = ReviewTools.focusPoint(heatmap, label)
            if point is not None:  # a scan not flagged shows no region: open on its near miss or hottest voxel
                self.display.jumpTo(point)
        except Exception:
            for node in added:  # a half-loaded result would be left behind: leave the scene as it was
                self.removeWithDisplay(node)
            raise
        return heatmap, label

    def removeWithDisplay(self, node: Any) -> None:
        """Remove ``node`` and the display and storage nodes it brought."""
        scene = self.nodes.scene
        for index in range(node.GetNumberOfDisplayNodes() - 1, -1, -1):
            display = node.GetNthDisplayNode(index)
            if display is not None:
                scene.RemoveNode(display)
        storage = node.GetStorageNode()
        if storage is not None:
            scene.RemoveNode(storage)
        scene.RemoveNode(node)
