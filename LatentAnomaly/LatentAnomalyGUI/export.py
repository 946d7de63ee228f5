"""Write the results on screen to a folder: label map and heatmap (NIfTI or NRRD), segmentation, summary, DICOM SEG.

The label map may have been re-thresholded in Slicer, so the summary written is the one stored on the label map
node. Volumes are written through storage nodes that are not kept in the scene (``SceneNodes.writeNode``): the
nodes keep pointing at their own files. A DICOM Segmentation is offered only when the input came from a DICOM
series and ``LatentAnomalyLib.outputs.dicom_seg`` (highdicom) is available. Works on any MRML scene.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from .nodes import SceneNodes, sitk_image
from .review import SUMMARY_ATTRIBUTE

FORMATS = {"nifti": ".nii.gz", "nrrd": ".nrrd"}
DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"  # set by Slicer's DICOM loader on volumes read from a series


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def dicom_source_files(volumeNode: Any) -> list[Path]:
    """The DICOM files a volume was read from; [] when it did not come from a DICOM series.

    Desktop Slicer's DICOM module records the instance UIDs and its database knows their files; a series read
    with the volumes logic (one file of the series as archetype) has them in its storage node's file list.
    """
    import sys

    if volumeNode is None:
        return []
    uids = (volumeNode.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split()
    database = getattr(sys.modules.get("slicer"), "dicomDatabase", None)
    if uids and database is not None:
        files = [Path(database.fileForInstance(uid)) for uid in uids]
    else:
        storage = volumeNode.GetStorageNode()
        if storage is None or not storage.GetFileName():
            return []
        names = [storage.GetNthFileName(i) for i in range(storage.GetNumberOfFileNames())]
        folder = Path(storage.GetFileName()).parent
        files = [Path(storage.GetFileName())] + [folder / name if not Path(name).is_absolute() else Path(name)
                                                  for name in names]
        files = list(dict.fromkeys(files))
    return files if files and all(f.is_file() and _is_dicom(f) for f in files) else []


def dicom_seg_available() -> bool:
    return importlib.util.find_spec("LatentAnomalyLib.outputs.dicom_seg") is not None and (
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
        """The label map as a DICOM Segmentation referencing ``dicomSeries`` (``LatentAnomalyLib.outputs.dicom_seg``).

        The label map is first put on the series' own grid (Slicer may store a series with an axis reversed):
        nearest neighbour on the same physical grid, so every voxel keeps its value.
        """
        if not dicom_seg_available():
            raise RuntimeError("DICOM SEG export needs LatentAnomalyLib.outputs.dicom_seg and highdicom")
        import SimpleITK as sitk

        from LatentAnomalyLib.outputs.dicom_seg import write_dicom_seg

        from .ground_truth import resample_like

        files = [str(f) for f in dicomSeries]
        header = sitk.ImageFileReader()
        header.SetFileName(files[0])
        header.ReadImageInformation()
        uid = header.GetMetaData("0020|000e").strip().rstrip("\x00")  # SeriesInstanceUID
        reader = sitk.ImageSeriesReader()  # the series in slice order, as SimpleITK and the library read it
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(Path(files[0]).parent), uid))
        labels = resample_like(sitk_image(labelNode), reader.Execute())
        summary = json.loads(labelNode.GetAttribute(SUMMARY_ATTRIBUTE) or "{}")
        model = summary.get("model") or {}
        options = {"model_name": model["name"], "model_version": str(model.get("version", ""))} if model else {}
        return write_dicom_seg(labels, files, path, **options)
