"""Slicer module without Slicer: dependencies, CMake lists, .ui and module structure, extension index entry, docs."""

from __future__ import annotations

import ast
import re
import stat
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.slicer_gui import (
    GUI_DIR,
    MODULE_DIR,
    POSIX,
    REPO,
    LatentAnomalyLogic,
    dependencies,
    library_path,
    regions,
)

# ----- dependencies ------------------------------------------------------------------------------


def test_requirements_file_matches_pyproject_pins():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = sorted(p for p in pins if dependencies.requirement_name(p) not in dependencies.SKIP_PACKAGES)
    listed = dependencies.read_requirements(MODULE_DIR / "Resources" / "requirements.txt")
    assert sorted(listed) == wanted
    assert dependencies.REQUIREMENTS_FILE == MODULE_DIR / "Resources" / "requirements.txt"


def test_requirement_and_import_names():
    assert dependencies.requirement_name("scikit-learn==1.8.0") == "scikit-learn"
    assert dependencies.requirement_name("torch>=2.4") == "torch"
    assert dependencies.requirement_name("monai[nibabel]~=1.6; python_version>'3'") == "monai"
    assert dependencies.import_name("scikit-learn==1.8.0") == "sklearn"
    assert dependencies.import_name("SimpleITK") == "SimpleITK"
    assert dependencies.import_name("safetensors==0.8.0") == "safetensors"


def test_missing_requirements_in_process():
    missing = dependencies.missing_requirements(["numpy==2.4.6", "surely-not-installed-xyz==1.0", "SimpleITK"])
    assert missing == ["surely-not-installed-xyz==1.0"]


@pytest.mark.skipif(not POSIX, reason="uses a shell wrapper as 'another interpreter'")
def test_missing_requirements_in_another_interpreter(tmp_path):
    wrapper = tmp_path / "PythonSlicer"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    assert dependencies.missing_requirements(["numpy", "surely-not-installed-xyz"], python=wrapper) == [
        "surely-not-installed-xyz"
    ]


def test_install_plan_routes_torch_and_simpleitk():
    need_torch, pip, problems = dependencies.install_plan(["monai==1.6.1", "torch>=2.4", "nibabel==5.4.2"])
    assert need_torch and pip == ["monai==1.6.1", "nibabel==5.4.2"] and problems == []
    need_torch, pip, problems = dependencies.install_plan(["SimpleITK"])
    assert not need_torch and pip == [] and "SimpleITK" in problems[0]
    wanted = dependencies.wanted_requirements()
    assert "torch>=2.4" in wanted and "SimpleITK" in wanted


# ----- static checks of the Slicer-only files --------------------------------------------------------


def _classes_and_imports(path: Path) -> tuple[dict[str, ast.ClassDef], set[str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    imported = {
        alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    return classes, imported


def test_module_file_defines_what_slicer_looks_for():
    path = MODULE_DIR / "LatentAnomaly.py"
    classes, imported = _classes_and_imports(path)
    assert {"LatentAnomaly", "LatentAnomalyTest"} <= set(classes)
    assert {"LatentAnomalyWidget", "LatentAnomalyLogic"} <= imported
    assert [base.id for base in classes["LatentAnomaly"].bases] == ["ScriptedLoadableModule"]
    assert [base.id for base in classes["LatentAnomalyTest"].bases] == ["ScriptedLoadableModuleTest"]
    assert "runTest" in {f.name for f in classes["LatentAnomalyTest"].body if isinstance(f, ast.FunctionDef)}
    assert len(path.read_text().splitlines()) <= 120
    widget_classes, _ = _classes_and_imports(GUI_DIR / "widget.py")
    assert [b.id for b in widget_classes["LatentAnomalyWidget"].bases] == [
        "ScriptedLoadableModuleWidget",
        "VTKObservationMixin",
    ]
    methods = {f.name for f in widget_classes["LatentAnomalyWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {
        "setup",
        "cleanup",
        "enter",
        "exit",
        "onSceneStartClose",
        "onSceneEndClose",
        "initializeParameterNode",
    } <= methods
    assert LatentAnomalyLogic.__name__ == "LatentAnomalyLogic"


def _ui_tree() -> ET.ElementTree:
    return ET.parse(MODULE_DIR / "Resources" / "UI" / "LatentAnomaly.ui")


def test_ui_parameter_names_match_the_parameter_node_and_widget_code():
    classes, _ = _classes_and_imports(GUI_DIR / "parameters.py")
    fields = {node.target.id for node in classes["LatentAnomalyParameterNode"].body if isinstance(node, ast.AnnAssign)}
    assert {
        "inputVolume",
        "heatmapVolume",
        "labelVolume",
        "modelPath",
        "scorer",
        "device",
        "skullMode",
        "threshold",
    } <= fields
    tree = _ui_tree()
    bound = {prop.findtext("string") for prop in tree.iter("property") if prop.get("name") == "SlicerParameterName"}
    assert bound <= fields, bound - fields
    assert bound == fields  # every parameter has a widget
    names = {widget.get("name") for widget in tree.iter("widget")}
    panel_code = (GUI_DIR / "widget.py").read_text() + (GUI_DIR / "results_panel.py").read_text()
    used = set(re.findall(r"self\.ui\.(\w+)", panel_code))
    assert {"regionsTableWidget", "groundTruthMetricsLabel", "detectButton"} <= used
    assert used <= names, used - names
    assert tree.getroot().find("widget").get("name") == "LatentAnomaly"


def test_slicer_only_files_compile():
    for path in [MODULE_DIR / "LatentAnomaly.py", *GUI_DIR.glob("*.py")]:
        compile(path.read_text(), str(path), "exec")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_icons_and_license():
    module_icon = MODULE_DIR / "Resources" / "Icons" / "LatentAnomaly.png"
    extension_icon = REPO / "Resources" / "LatentAnomaly.png"
    assert _png_size(module_icon) == (128, 128)
    assert extension_icon.read_bytes() == module_icon.read_bytes()
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text


# ----- extension index entry and documentation ---------------------------------------------------


def test_ui_review_controls():
    tree = _ui_tree()
    widgets = {widget.get("name"): widget for widget in tree.iter("widget")}
    opacity = widgets["opacitySliderWidget"]
    values = {prop.get("name"): prop.findtext("double") for prop in opacity.iter("property")}
    assert (float(values["minimum"]), float(values["maximum"]), float(values["value"])) == (0.0, 1.0, 0.5)
    assert "heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5" in (GUI_DIR / "parameters.py").read_text()
    table = widgets["regionsTableWidget"]
    assert table.get("class") == "QTableWidget"
    columns = [prop.findtext("number") for prop in table.iter("property") if prop.get("name") == "columnCount"]
    assert columns == [str(len(regions.COLUMNS))]
    selector = widgets["groundTruthSelector"]
    types = [
        s.text for prop in selector.iter("property") if prop.get("name") == "nodeTypes" for s in prop.iter("string")
    ]
    assert types == ["vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode"]
    scene_receivers = {
        c.findtext("receiver") for c in tree.iter("connection") if "mrmlSceneChanged" in c.findtext("signal")
    }
    node_selectors = {name for name, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    assert node_selectors <= scene_receivers, node_selectors - scene_receivers


def test_documentation_exists_and_is_honest_about_what_ran():
    text = (REPO / "docs" / "slicer-module.md").read_text()
    assert "## What was and was not exercised" in text
    assert "python -m pytest -q tests/gui" in text
    assert "python -m pytest -q -m mrml tests/slicer" in text
    for test in sorted((REPO / "tests" / "slicer").glob("test_*.py")):  # every mrml test is named in the table
        names = re.findall(r"^def (test_\w+)", test.read_text(), re.M)
        assert all(name in text for name in names), (test.name, [n for n in names if n not in text])
    assert "](../Resources/Screenshots/" in text
    for control in ("opacity", "Flagged regions", "Ground truth", "Cancel", "DICOM SEG", "Reload and Test"):
        assert control in text, control


def test_library_is_found_next_to_the_module_or_one_level_up(tmp_path):
    installed = tmp_path / "qt-scripted-modules"
    (installed / "LatentAnomalyLib").mkdir(parents=True)
    (installed / "LatentAnomalyLib" / "__init__.py").write_text("")
    path = ["/elsewhere"]
    assert library_path.ensure_library_importable(installed, path) == installed
    assert path == [str(installed), "/elsewhere"]
    assert library_path.ensure_library_importable(installed, path) is None and len(path) == 2  # not added twice
    source_path: list[str] = []
    assert library_path.ensure_library_importable(MODULE_DIR, source_path) == REPO  # the repository checkout
    assert source_path == [str(REPO)]
    assert library_path.ensure_library_importable(tmp_path / "empty", []) is None
    assert library_path.ensure_library_importable(MODULE_DIR) is None  # already importable here (pip -e)
