"""The module's access to one MRML scene: find nodes, read and write volumes and segmentations, node geometry.

Only what both desktop Slicer and Slicer's pip-installable core libraries (``slicer-core``) offer is used: the
volumes logic's ``AddArchetypeVolume`` to read (flag 1 makes a label map), a node's default storage node and
``WriteData`` to write (the node keeps pointing at its own files), numpy plus the node's IJK-to-RAS matrix
instead of ``sitkUtils``. The scene is given, never looked up (inside Slicer: ``slicer.mrmlScene``). ``slicer``,
``vtk`` and SimpleITK are imported inside the methods, so this file imports without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def ijk_to_ras(volumeNode: Any) -> np.ndarray:
    """The node's 4x4 IJK-to-RAS matrix (its own grid, parent transforms not applied)."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def volume_geometry(volumeNode: Any) -> dict[str, list]:
    """Dimensions, spacing, origin and IJK-to-RAS matrix, for comparing result and input grids."""
    return {
        "dimensions": list(volumeNode.GetImageData().GetDimensions()),
        "spacing": list(volumeNode.GetSpacing()),
        "origin": list(volumeNode.GetOrigin()),
        "ijkToRas": ijk_to_ras(volumeNode).tolist(),
    }


def sitk_image(volumeNode: Any, array: np.ndarray | None = None) -> Any:
    """A SimpleITK image (LPS physical space) of the node's voxels, or of ``array`` on the node's grid."""
    import SimpleITK as sitk

    voxels = np.asarray(array if array is not None else array_of(volumeNode))
    matrix = LPS_TO_RAS @ ijk_to_ras(volumeNode)[:3, :3]
    spacing = np.linalg.norm(matrix, axis=0)
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (matrix / spacing).ravel()])
    image.SetOrigin([float(v) for v in LPS_TO_RAS @ ijk_to_ras(volumeNode)[:3, 3]])
    return image


def array_of(volumeNode: Any) -> np.ndarray:
    """The node's voxels as a (k, j, i) numpy view (``slicer.util.arrayFromVolume``)."""
    import slicer

    return slicer.util.arrayFromVolume(volumeNode)


def to_world(node: Any, point: Any) -> tuple[float, float, float]:
    """A point in the node's own RAS through the node's parent transforms (unchanged when it has none)."""
    import vtk

    transformNode = node.GetParentTransformNode() if node is not None else None
    point = [float(v) for v in point]
    if transformNode is not None:
        toWorld = vtk.vtkGeneralTransform()
        transformNode.GetTransformToWorld(toWorld)
        point = list(toWorld.TransformPoint(point))
    return point[0], point[1], point[2]


class SceneNodes:
    """Reads and writes nodes of ``scene``; ``applicationLogic`` supplies the registered module logics if any."""

    def __init__(self, scene: Any, applicationLogic: Any = None) -> None:
        self.scene = scene
        self.applicationLogic = applicationLogic
        self._volumesLogic = None

    def nodesByClass(self, className: str) -> list[Any]:
        """Every node of ``className`` (subclasses included) in this scene."""
        collection = self.scene.GetNodesByClass(className)
        return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]

    def nodeIds(self) -> set[str]:
        return {self.scene.GetNthNode(i).GetID() for i in range(self.scene.GetNumberOfNodes())}

    def uniqueName(self, base: str) -> str:
        return self.scene.GenerateUniqueName(base)

    def volumesLogic(self) -> Any:
        """The application's registered volumes logic, else one of our own on this scene."""
        registered = self.applicationLogic.GetModuleLogic("Volumes") if self.applicationLogic is not None else None
        if registered is not None and registered.GetMRMLScene() is self.scene:
            return registered
        if self._volumesLogic is None:
            import slicer

            self._volumesLogic = slicer.vtkSlicerVolumesLogic()
            self._volumesLogic.SetMRMLScene(self.scene)
            if self.applicationLogic is not None:
                self._volumesLogic.SetMRMLApplicationLogic(self.applicationLogic)
        return self._volumesLogic

    def readVolume(self, path: str | Path, name: str, labelmap: bool = False) -> Any:
        """A new scalar (or label map) volume node read from ``path``; ``RuntimeError`` if it cannot be read.

        ``path`` may be a DICOM series folder: its files are given in slice order, as the CLI reads them (the
        archetype reader alone would take them in name order). Names are made unique by the volumes logic.
        """
        options = 1 if labelmap else 0
        if Path(path).is_dir():
            import vtk

            from LatentAnomalyLib.io.read import dicom_series_files

            files = dicom_series_files(Path(path))
            fileList = vtk.vtkStringArray()
            for file in files:
                fileList.InsertNextValue(file)
            node = self.volumesLogic().AddArchetypeVolume(files[0], name, options, fileList)
        else:
            node = self.volumesLogic().AddArchetypeVolume(str(path), name, options)
        if node is None:
            raise RuntimeError(f"could not read {path}")
        return node

    @staticmethod
    def writeNode(node: Any, path: str | Path, compress: bool = False) -> Path:
        """Write ``node`` to ``path`` (format from the extension) through a storage node not kept in the scene."""
        path = Path(path)
        storage = node.CreateDefaultStorageNode()
        if storage is None:
            raise RuntimeError(f"{node.GetName()} cannot be written")
        storage.SetFileName(str(path))
        storage.SetUseCompression(1 if compress else 0)
        if not storage.WriteData(node) or not path.is_file():
            raise RuntimeError(f"could not write {node.GetName()} to {path}")
        return path

    def detachStorage(self, node: Any) -> None:
        """Forget the file a node was read from (a temporary one): saving the scene then writes the data itself."""
        storage = node.GetStorageNode()
        if storage is not None:
            node.SetAndObserveStorageNodeID(None)
            self.scene.RemoveNode(storage)
