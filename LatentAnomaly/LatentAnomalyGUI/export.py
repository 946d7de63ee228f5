"""Write the results on screen to a folder: label map and heatmap (NIfTI or NRRD), segmentation, summary, DICOM SEG.

The label map may have been re-thresholded in Slicer, so the summary written is the one stored on the label map
node. Volumes are written through storage nodes that are not kept in the scene (``SceneNodes.writeNode``): the
nodes keep pointing at their own files. A DICOM Segmentation is offered only when the input came from a DICOM
series and ``LatentAnomalyLib.dicom_seg`` (highdicom) is available. Works on any MRML scene.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from .nodes import SceneNodes, array_of
from .review import SUMMARY_ATTRIBUTE

FORMATS = {"nifti": ".nii.gz", "nrrd": ".nrrd"}
DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"  # set by Slicer's DICOM loader on volumes read from a series


def dicom_source_files(volumeNode: Any) -> list[Path]:
    """The DICOM files a volume was loaded from (Slicer's DICOM database), [] when not from DICOM."""
    import sys

    uids = (volumeNode.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split() if volumeNode is not None else []
    database = getattr(getattr(sys.modules.get("slicer"), "dicomDatabase", None), "fileForInstance", None)
    if not uids or database is None:
        return []
    files = [Path(database(uid)) for uid in uids]
    return files if all(f.is_file() for f in files) else []


def dicom_seg_available() -> bool:
    return importlib.util.find_spec("LatentAnomalyLib.dicom_seg") is not None and (
        importlib.util.find_spec("highdicom") is not None
    )


class ResultExporter:
    """Writes results of ``nodes.scene`` to a folder."""

    def __init__(self, nodes: SceneNodes) -> None:
        self.nodes = nodes

    def exportResults(
        self,
        folder: str | Path,
        heatmapNode: Any,
        labelNode: Any,
        fileFormat: str = "nifti",
        segmentationNode: Any = None,
        dicomSeries: list[Path] | None = None,
    ) -> list[Path]:
        """Write label map, heatmap, the segmentation (.seg.nrrd), the summary and, given a series, a DICOM SEG."""
        if fileFormat not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fileFormat!r}")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = FORMATS[fileFormat]
        written = [
            self.nodes.writeNode(node, folder / f"{name}{suffix}", compress=True)
            for node, name in ((labelNode, "labelmap"), (heatmapNode, "heatmap"))
            if node is not None
        ]
        if segmentationNode is not None:
            written.append(self.nodes.writeNode(segmentationNode, folder / "segmentation.seg.nrrd", compress=True))
        raw = labelNode.GetAttribute(SUMMARY_ATTRIBUTE) if labelNode is not None else None
        if raw:
            (folder / "summary.json").write_text(json.dumps(json.loads(raw), indent=2) + "\n", encoding="utf-8")
            written.append(folder / "summary.json")
        if dicomSeries:
            written.append(self.exportDicomSeg(folder / "labelmap.seg.dcm", labelNode, dicomSeries))
        return written

    @staticmethod
    def exportDicomSeg(path: Path, labelNode: Any, dicomSeries: list[Path]) -> Path:
        """The label map as a DICOM Segmentation referencing ``dicomSeries`` (``LatentAnomalyLib.dicom_seg``)."""
        if not dicom_seg_available():
            raise RuntimeError("DICOM SEG export needs LatentAnomalyLib.dicom_seg and highdicom")
        from LatentAnomalyLib.dicom_seg import write_dicom_seg

        write_dicom_seg(array_of(labelNode), dicomSeries, path)
        return path
