"""The review application: a trame server, a Slicer scene rendered by trame-slicer, and the page's actions.

Order matters with trame-slicer 2.0.0: the first case is loaded into the scene before the views are created, and the
layout shows three slice views side by side (a single-view layout got no resize events, so no frames).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from trame.app import get_server
from trame.widgets import html
from trame_server import Server
from trame_slicer import module as trame_slicer_module
from trame_slicer.app.logic.slice_view_logic import connect_slice_view_slider_to_state
from trame_slicer.app.ui.slider import Slider
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import RemoteViewFactory
from trame_slicer.views import Layout, LayoutDirection, SliceView, ViewLayoutDefinition, ViewType
from trame_slicer.views.render_scheduler import NoScheduleRendering
from vtkmodules.vtkCommonCore import vtkCommand, vtkObject

from LatentAnomalyLib.errors import InputError

from .case_data import CaseData
from .results import Results
from .scene import ReviewScene
from .summary import REGION_P_NOTE, region_rows
from .summary import summary_text as case_summary_text
from .ui import build_page

VIEWS = {"axial": "Red", "coronal": "Green", "sagittal": "Yellow"}


def _p(region: dict[str, Any]) -> float | None:
    value = region.get("p_value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summary_text(data: CaseData) -> str:
    """The case's summary as a few lines (see :func:`LatentAnomalyReview.summary.summary_text`)."""
    return case_summary_text(data.summary, data.case.case_id, data.scan_found, data.case.scan_path)


class ReviewApp:
    """Holds the server, the scene and the current case; the page's triggers and state changes end here."""

    def __init__(self, results: Results, first: CaseData | None = None, server: Server | None = None) -> None:
        self.results = results
        self.server = server or get_server("latent-anomaly-review", client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.slicer_app = SlicerApp()
        self.scene = ReviewScene(self.slicer_app.scene)
        self.case_index = results.first_viewable()
        self.data = first or CaseData.load(results.cases[self.case_index], results.root)
        self.scene.set_case(self.data)  # before the views exist
        self.slice_keys: dict[str, str] = {}
        self.slice_views: dict[str, Any] = {}
        # Slice views start without rendering (trame-slicer's default renders each view ~60 times while it is set
        # up: 3 s for three views); the factory then hands them to the RCA scheduler, which renders once per frame.
        quiet_slice_view = partial(SliceView, scheduled_render_strategy=NoScheduleRendering())
        self.slicer_app.view_manager.register_factory(
            RemoteViewFactory(self.server, quiet_slice_view, ViewType.SLICE_VIEW, populate_view_ui_f=self._slice_view_ui,
                              target_fps=30.0, blur_fps=30.0, interactive_quality=50)
        )  # fmt: skip
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        views = [ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.coronal_view(),
                 ViewLayoutDefinition.sagittal_view()]  # fmt: skip
        # VTK 9.6 warns, once per view, that interactors will stop sending WindowResizeEvent (trame-slicer observes it)
        warnings_shown = vtkObject.GetGlobalWarningDisplay()
        vtkObject.GlobalWarningDisplayOff()
        try:
            self.layout_manager.register_layout("review", Layout(LayoutDirection.Horizontal, views))
            self.layout_manager.set_layout("review")
        finally:
            vtkObject.SetGlobalWarningDisplay(warnings_shown)
        self._threshold_wanted: float | None = None
        self._threshold_task: asyncio.Task | None = None
        self._init_state()
        self.ui = build_page(self.server, self.layout_manager, self.slice_keys)
        self.scene.show_in_slice_views()
        self._show_case()
        self.ctrl.trigger("select_case")(self.select_case)
        self.ctrl.trigger("jump_region")(self.jump_region)
        self.ctrl.trigger("jump_near_miss")(self.jump_near_miss)
        self.ctrl.trigger("save_labels")(self.save_labels)
        self.state.change("opacity")(self._on_opacity)
        self.state.change("threshold")(self._on_threshold)

    def _slice_view_ui(self, server: Server, view_id: str, view: Any) -> None:
        """Under each slice view: its slice slider (trame-slicer's), bound to the view's slice offset."""
        name = next((n for n, tag in VIEWS.items() if tag == view.get_singleton_tag()), view.get_singleton_tag())
        self.slice_views[name] = view
        view.render_window().SetMultiSamples(0)  # 8x MSAA (trame-slicer's default) makes llvmpipe renders 25x slower
        with html.Div(style="position: absolute; bottom: 0; left: 0; width: 100%;", classes="slice-slider-gutter"):
            slider_state = connect_slice_view_slider_to_state(server, view)
            Slider(typed_state=slider_state, theme="dark", dense=True, id=f"{name}-slice-slider")
        self.slice_keys[name] = slider_state.name.value
        # Fit the slice to the view whenever the browser resizes it (after trame-slicer's own resize handling).
        view.interactor().AddObserver(vtkCommand.WindowResizeEvent, lambda *_: self._fit(view), -1.0)

    def _fit(self, view: Any) -> None:
        """Fit a slice view to the brain without moving its slice (fitting alone recentres the offset)."""
        offset = view.get_slice_value()
        view.fit_view_to_content()
        self.scene.frame(view.get_view_node(), self.data.brain_corners_ras)
        view.set_slice_value(offset)

    def _init_state(self) -> None:
        self.state.update(
            {
                "trame__title": "LatentAnomaly review",
                "results_path": str(self.results.root),
                "results_kind": self.results.kind,
                "cases": [c.row() for c in self.results.cases],
                "has_p_value": self.results.has_p_value,
                "opacity": self.scene.opacity,
                "save_message": "",
                "region_note": "",
                "near_misses": [],
                "focus_note": "",
            }
        )

    def _show_case(self) -> None:
        """Fit the views to the case, go to its largest region, and publish its state."""
        for view in self.slice_views.values():
            self._fit(view)
        low, high, step = self.data.threshold_range()
        self._threshold_wanted = self.data.threshold
        self.state.update(
            {
                "case_index": self.case_index,
                "summary_text": summary_text(self.data),
                "case_files": self._case_files(),
                "threshold_min": low,
                "threshold_max": high,
                "threshold_step": step,
                "calibrated_threshold": float(self.data.summary["voxel_threshold"]),
                "threshold": self.data.threshold,
                "save_message": "",
            }
        )
        self._publish_labels()
        self._publish_near_misses()
        point, why = self.data.focus_ras()
        self.state.focus_note = f"views open on the {why}"
        if point is not None:  # a scan not flagged has no region shown: without this the views stay at 0 mm
            self.scene.jump_to(point)

    def _case_files(self) -> list[dict[str, str]]:
        """Links to the case's output files, served by ``/results/`` (see :mod:`LatentAnomalyReview.files`)."""
        folder = self.data.case.folder
        relative = folder.relative_to(self.results.root).as_posix() if folder != self.results.root else ""
        prefix = f"results/{relative}/" if relative else "results/"
        names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return [{"name": name, "href": prefix + name} for name in names]

    def _publish_labels(self) -> None:
        voxels = int(self.data.labels.sum())
        self.state.label_voxels = voxels
        self.state.label_ml = f"{voxels * self.data.voxel_ml:.2f}"
        self.state.regions = region_rows(self.data.components, self.data.region_p_values(), self.data.summary.get("alpha"))
        self.state.region_note = "" if self.data.at_calibrated_threshold else REGION_P_NOTE

    def _publish_near_misses(self) -> None:
        """Regions above the voxel threshold that detect's label map does not show, each with its p-value."""
        missed = self.data.near_misses()
        self.state.near_misses = region_rows(missed, [_p(r) for r in missed], self.data.summary.get("alpha"))

    def select_case(self, index: int) -> None:
        index = int(index)
        if index == self.case_index or not (0 <= index < len(self.results.cases)):
            return
        try:
            data = CaseData.load(self.results.cases[index], self.results.root)
        except InputError as error:
            self.state.save_message = f"cannot open case: {error}"
            return
        self.case_index, self.data = index, data
        self.scene.set_case(data)
        self._show_case()

    def jump_region(self, index: int) -> None:
        index = int(index)
        if 0 <= index < len(self.data.components):
            self.scene.jump_to(self.data.components[index]["centroid_ras_mm"])

    def jump_near_miss(self, index: int) -> None:
        index = int(index)
        missed = self.data.near_misses()
        if 0 <= index < len(missed) and missed[index].get("centroid_ras_mm") is not None:
            self.scene.jump_to(missed[index]["centroid_ras_mm"])

    def save_labels(self) -> None:
        try:
            path = self.data.save_reviewed()
        except (OSError, InputError) as error:
            self.state.save_message = f"not saved: {error}"
            return
        self.state.case_files = self._case_files()
        self.state.save_message = (
            f"saved {path.name} ({int(self.data.labels.sum())} voxels, threshold {self.data.threshold:.3f})"
        )

    def _on_opacity(self, opacity: float, **_: Any) -> None:
        self.scene.set_opacity(float(opacity))
        for view in self.slice_views.values():  # a composite node's opacity alone does not make a view render
            view.schedule_render()

    def _on_threshold(self, threshold: float, **_: Any) -> None:
        """Re-threshold from the heatmap; a drag's intermediate values are skipped while one is computed."""
        if threshold is None or float(threshold) == self.data.threshold:
            return
        self._threshold_wanted = float(threshold)
        if self._threshold_task is None or self._threshold_task.done():
            self._threshold_task = asyncio.ensure_future(self._apply_thresholds())

    async def _apply_thresholds(self) -> None:
        while self._threshold_wanted is not None and self._threshold_wanted != self.data.threshold:
            await asyncio.sleep(0.01)  # let the slider's queued values arrive; the last one wins
            value = self._threshold_wanted
            if value == float(self.data.summary["voxel_threshold"]):
                self.data.restore_detected()  # detect's label map, also when it keeps only regions with p <= alpha
            else:
                self.data.rethreshold(value)
            self.scene.update_labels(self.data)
            with self.state:
                self._publish_labels()
                self.state.save_message = ""
