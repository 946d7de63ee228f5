"""Pictures of the three slice views from Slicer's own renderer, offscreen, as PNG files.

For each of the axial, sagittal and coronal views a slice logic of its own is created on the scene (named
``LatentAnomalyPicture...``, so the user's Red/Yellow/Green views are not touched), given the scan as background,
the heatmap as foreground at the module's opacity and colours and the label map as an outline, exactly as
``ResultDisplay.show`` sets them; Slicer's slice pipeline blends the layers and the slice-view displayable managers
(segmentations, models) draw on top in an offscreen render window: ``vtkEGLRenderWindow`` on Mesa when there is no
display (plain Python with ``slicer-core``), the platform's window inside Slicer. The picture nodes are removed
afterwards. ``slicer`` and ``vtk`` are imported inside the methods.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VIEWS = ("Axial", "Sagittal", "Coronal")
NODE_PREFIX = "LatentAnomalyPicture"
DISPLAYABLE_MANAGERS = ("vtkMRMLSegmentationsDisplayableManager2D", "vtkMRMLModelSliceDisplayableManager")


@dataclass
class Picture:
    """One rendered view: its orientation, the PNG written, the seconds it took and its pixel-to-RAS matrix.

    ``xyToRas`` maps (x, y, 0, 1), x right and y up from the bottom-left pixel, to RAS millimetres.
    """

    orientation: str
    path: Path
    seconds: float
    xyToRas: list[list[float]]


def offscreen_render_window() -> Any:
    """An offscreen render window: EGL when Linux has no X display (no warning about a bad X connection)."""
    import vtk

    window = None
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        try:
            from vtkmodules.vtkRenderingOpenGL2 import vtkEGLRenderWindow

            window = vtkEGLRenderWindow()
        except ImportError:
            window = None
    window = window or vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.ShowWindowOff()
    return window


class SliceViewPictures:
    """Renders slice views of ``scene`` (layers as the module shows them) to PNG."""

    def __init__(self, scene: Any, applicationLogic: Any, size: tuple[int, int] = (400, 400)) -> None:
        self.scene = scene
        self.applicationLogic = applicationLogic
        self.size = size

    def render(
        self,
        folder: str | Path,
        background: Any,
        heatmap: Any = None,
        label: Any = None,
        opacity: float = 0.5,
        point: Any = None,
        prefix: str = "view",
    ) -> list[Picture]:
        """One PNG per orientation in ``folder``; slices pass through the RAS ``point`` (default: volume centre)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return [
            self._renderOne(orientation, folder / f"{prefix}-{orientation.lower()}.png", background, heatmap, label,
                            opacity, point)
            for orientation in VIEWS
        ]

    def _renderOne(self, orientation, path, background, heatmap, label, opacity, point) -> Picture:
        import slicer
        import vtk

        started = time.perf_counter()
        existing = self._nodeIds()
        sliceLogic = slicer.vtkMRMLSliceLogic()
        if self.applicationLogic is not None:
            sliceLogic.SetMRMLApplicationLogic(self.applicationLogic)
        sliceLogic.SetMRMLScene(self.scene)
        sliceNode = sliceLogic.AddSliceNode(f"{NODE_PREFIX}{orientation}")
        if not sliceNode.HasSliceOrientationPreset(orientation):  # a bare scene's slice nodes have no presets
            sliceNode.AddSliceOrientationPreset(orientation, self._preset(orientation))
        sliceNode.SetOrientation(orientation)
        sliceNode.SetUseLabelOutline(True)
        composite = sliceLogic.GetSliceCompositeNode()
        composite.SetBackgroundVolumeID(background.GetID())
        composite.SetForegroundVolumeID(heatmap.GetID() if heatmap is not None else None)
        composite.SetForegroundOpacity(float(opacity))
        composite.SetLabelVolumeID(label.GetID() if label is not None else None)
        composite.SetLabelOpacity(1.0)
        width, height = self.size
        sliceLogic.ResizeSliceNode(width, height)
        sliceLogic.FitSliceToBackground(width, height)
        if point is not None:
            sliceNode.JumpSliceByOffsetting(*(float(v) for v in point))
        window = offscreen_render_window()
        window.SetSize(width, height)
        renderer = vtk.vtkRenderer()
        renderer.GetActiveCamera().ParallelProjectionOn()
        window.AddRenderer(renderer)
        interactor = vtk.vtkGenericRenderWindowInteractor()  # displayable managers need one; it opens no window
        interactor.SetRenderWindow(window)
        mapper = vtk.vtkImageMapper()
        mapper.SetColorWindow(255)
        mapper.SetColorLevel(127.5)
        mapper.SetInputConnection(sliceLogic.GetImageDataConnection())
        actor = vtk.vtkActor2D()
        actor.SetMapper(mapper)
        renderer.AddViewProp(actor)
        group = self._displayableManagers(renderer, sliceNode)
        try:
            window.Render()
            capture = vtk.vtkWindowToImageFilter()
            capture.SetInput(window)
            capture.ReadFrontBufferOff()
            writer = vtk.vtkPNGWriter()
            writer.SetFileName(str(path))
            writer.SetInputConnection(capture.GetOutputPort())
            writer.Write()
            matrix = sliceNode.GetXYToRAS()
            xyToRas = [[matrix.GetElement(i, j) for j in range(4)] for i in range(4)]
        finally:
            group.SetMRMLDisplayableNode(None)
            window.Finalize()
            sliceLogic.SetMRMLScene(None)
            for nodeId in sorted(self._nodeIds() - existing, reverse=True):  # slice, composite, slice-model nodes
                node = self.scene.GetNodeByID(nodeId)
                if node is not None:
                    self.scene.RemoveNode(node)
        return Picture(orientation, path, time.perf_counter() - started, xyToRas)

    def _nodeIds(self) -> set[str]:
        return {self.scene.GetNthNode(i).GetID() for i in range(self.scene.GetNumberOfNodes())}

    def _displayableManagers(self, renderer: Any, sliceNode: Any) -> Any:
        import slicer

        factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
        if self.applicationLogic is not None:
            factory.SetMRMLApplicationLogic(self.applicationLogic)
        for name in DISPLAYABLE_MANAGERS:
            if not factory.IsDisplayableManagerRegistered(name):
                factory.RegisterDisplayableManager(name)
        group = slicer.vtkMRMLDisplayableManagerGroup()
        group.Initialize(factory, renderer)
        group.SetMRMLDisplayableNode(sliceNode)
        return group

    @staticmethod
    def _preset(orientation: str) -> Any:
        import slicer

        return {
            "Axial": slicer.vtkMRMLSliceNode.GetAxialSliceToRASMatrix,
            "Sagittal": slicer.vtkMRMLSliceNode.GetSagittalSliceToRASMatrix,
            "Coronal": slicer.vtkMRMLSliceNode.GetCoronalSliceToRASMatrix,
        }[orientation]()


def montage(pictures: list[Picture], path: str | Path) -> Path:
    """The pictures side by side, left to right, in one PNG (vtk only: works inside Slicer too)."""
    import vtk

    append = vtk.vtkImageAppend()
    append.SetAppendAxis(0)
    readers = []
    for picture in pictures:
        reader = vtk.vtkPNGReader()
        reader.SetFileName(str(picture.path))
        append.AddInputConnection(reader.GetOutputPort())
        readers.append(reader)
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputConnection(append.GetOutputPort())
    writer.Write()
    return Path(path)

