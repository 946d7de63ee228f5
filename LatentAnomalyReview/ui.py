"""The review page's layout: case list, summary, sliders, region list and save on the left, three slice views.

Only widgets and bindings live here; every action is a method of :class:`LatentAnomalyReview.app.ReviewApp` reached
through ``trigger(...)`` or a state change. Element ids (``case-row-N``, ``region-row-N``, ``threshold-slider``,
``label-voxels``, ``region-note``, ``near-miss-row-N``, ``focus-note``, ``slice-positions``, ``save-button``, ``save-message``) are what the browser tests
use. The region list shows each region's p-value and whether it is at most alpha ("n/a" without one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trame.ui.vuetify3 import VAppLayout
from trame.widgets import html
from trame.widgets import vuetify3 as v3

if TYPE_CHECKING:
    from trame_server import Server
    from trame_slicer.core import LayoutManager

_TABLE = "font-size: 12px; width: 100%; border-collapse: collapse;"
_PANEL = "width: 400px; min-width: 400px; overflow-y: auto; padding: 8px; font-size: 13px;"


def _slider(label: str, key: str, element_id: str, **kwargs) -> None:
    html.Div(label, classes="mt-2")
    v3.VSlider(
        v_model=(key,),
        id=element_id,
        hide_details=True,
        density="compact",
        thumb_label=True,
        **kwargs,
    )


def _case_list() -> None:
    html.Div("{{ results_kind === 'batch' ? 'Cases (scores.csv order)' : 'Case (detect output)' }}",
             classes="text-subtitle-2")  # fmt: skip
    with html.Table(style=_TABLE, id="case-list"):
        with html.Tr():
            for title in ("case", "score"):
                html.Th(title, style="text-align: left")
            html.Th("p-value", v_if=("has_p_value",), style="text-align: left", id="case-p-header")
            html.Th("flagged", style="text-align: left")
        with html.Tr(
            v_for="(c, i) in cases",
            key="i",
            id=("`case-row-${i}`",),
            click="c.viewable && trigger('select_case', [i])",
            style=("{cursor: c.viewable ? 'pointer' : 'default', opacity: c.viewable ? 1 : 0.5, "
                   "background: i === case_index ? '#37474f' : 'transparent'}",),
            title=("c.note",),
        ):  # fmt: skip
            html.Td("{{ c.case_id }}")
            html.Td("{{ c.score }}")
            html.Td("{{ c.p_value }}", v_if=("has_p_value",))
            html.Td("{{ c.flagged }}")


def _region_table(rows_key: str, row_prefix: str, trigger: str, table_id: str) -> None:
    """A table of region rows (``LatentAnomalyReview.summary.region_rows``) whose click calls ``trigger(i)``."""
    with html.Table(style=_TABLE, id=table_id):
        with html.Tr():
            for title in ("#", "volume mL", "peak", "p", "p \u2264 \u03b1", "centroid RAS mm"):
                html.Th(title, style="text-align: left")
        with html.Tr(
            v_for=f"(r, i) in {rows_key}",
            key="i",
            id=(f"`{row_prefix}${{i}}`",),
            click=f"trigger('{trigger}', [i])",
            style="cursor: pointer",
        ):
            for cell in ("id", "volume", "peak", "p_value", "kept", "centroid"):
                html.Td(f"{{{{ r.{cell} }}}}")


def _region_list() -> None:
    html.Div("Regions in the label map (click to go there)", classes="text-subtitle-2 mt-3")
    _region_table("regions", "region-row-", "jump_region", "region-list")
    html.Div("no region in the label map", v_if=("regions.length === 0",), classes="text-caption")
    html.Div("{{ region_note }}", v_if=("region_note",), id="region-note", classes="text-caption")
    # Detect's regions above the voxel threshold that its label map does not show (every region of a scan that is
    # not flagged), with their p-values: a near miss is one click away.
    with html.Div(v_if=("near_misses.length > 0",), id="near-misses"):
        html.Div("Not in the label map: regions above the voxel threshold not kept (click to go there)",
                 classes="text-subtitle-2 mt-3")  # fmt: skip
        _region_table("near_misses", "near-miss-row-", "jump_near_miss", "near-miss-list")
    html.Div("{{ focus_note }}", v_if=("focus_note",), id="focus-note", classes="text-caption")


def build_page(server: Server, layout_manager: LayoutManager, slice_keys: dict[str, str]) -> VAppLayout:
    """Create the page on ``server``; ``slice_keys`` maps view names to their slice-offset state keys."""
    positions = "  ".join(f"{name} {{{{ Number({key}).toFixed(1) }}}} mm" for name, key in slice_keys.items())
    with VAppLayout(server, template_name="main") as layout:
        layout.root.theme = "dark"
        with html.Div(style="display: flex; height: 100vh; width: 100vw;"):
            with html.Div(style=_PANEL):
                html.Div("LatentAnomaly review", classes="text-h6")
                html.Div("{{ results_path }}", classes="text-caption", style="word-break: break-all;")
                _case_list()
                html.Div("Case summary", classes="text-subtitle-2 mt-3")
                html.Pre("{{ summary_text }}", id="case-summary", style="white-space: pre-wrap; font-size: 12px;")
                with html.Div(classes="text-caption", id="case-files"):
                    html.Span("files: ")
                    html.A("{{ f.name }} ", v_for="f in case_files", key="f.name", href=("f.href",), target="_blank",
                           style="margin-right: 6px; color: #90caf9;")  # fmt: skip
                _slider("Heatmap opacity", "opacity", "opacity-slider", min=0.0, max=1.0, step=0.05)
                with html.Div(classes="mt-2"):
                    html.Span("Voxel threshold <span id='threshold-value'>{{ Number(threshold).toFixed(3) }}</span>")
                    v3.VBtn(
                        "calibrated {{ Number(calibrated_threshold).toFixed(3) }}",
                        id="calibrated-button",
                        click="threshold = calibrated_threshold",
                        disabled=("threshold === calibrated_threshold",),
                        size="x-small",
                        variant="tonal",
                        classes="ml-2",
                    )
                v3.VSlider(
                    v_model=("threshold",),
                    id="threshold-slider",
                    min=("threshold_min",),
                    max=("threshold_max",),
                    step=("threshold_step",),
                    hide_details=True,
                    density="compact",
                )
                html.Div(
                    "Label map: <span id='label-voxels'>{{ label_voxels }}</span> voxels, {{ label_ml }} mL",
                    classes="mt-1",
                )
                _region_list()
                v3.VBtn(
                    "Save reviewed label map",
                    id="save-button",
                    click="trigger('save_labels')",
                    classes="mt-3",
                    size="small",
                    color="primary",
                )
                html.Div("{{ save_message }}", id="save-message", classes="text-caption mt-1")
                html.Div(positions, id="slice-positions", classes="text-caption mt-3")
            with html.Div(style="flex: 1; display: flex; position: relative;", id="views"):
                layout_manager.initialize_layout_grid(layout)
    return layout
