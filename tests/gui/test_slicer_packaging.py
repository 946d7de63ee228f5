"""Slicer module without Slicer: dependencies, CMake lists, .ui and module structure, extension index entry, docs."""

from __future__ import annotations

import ast
import json
import re
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.slicer_gui import (
    BUNDLE,
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


def _cmake_list(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, re.S)
    assert match, variable
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.split("#")[0].strip()]


def test_every_python_file_is_listed_in_module_cmake():
    text = (MODULE_DIR / "CMakeLists.txt").read_text()
    listed = {item.replace("${MODULE_NAME}", "LatentAnomaly") for item in _cmake_list(text, "MODULE_PYTHON_SCRIPTS")}
    present = {p.relative_to(MODULE_DIR).as_posix() for p in MODULE_DIR.rglob("*.py") if "__pycache__" not in p.parts}
    assert present == listed
    resources = [
        item.replace("${MODULE_NAME}", "LatentAnomaly") for item in _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    ]
    assert set(resources) == {
        "Resources/Icons/LatentAnomaly.png",
        "Resources/UI/LatentAnomaly.ui",
        "Resources/requirements.txt",
    }
    for item in resources:
        assert (MODULE_DIR / item).is_file(), item
    assert "slicerMacroBuildScriptedModule(" in text and "WITH_GENERIC_TESTS" in text
    assert re.search(r"if\(BUILD_TESTING\)\s+.*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)", text, re.S)
    assert "GLOB_RECURSE" in text and "install(DIRECTORY" in text and "LatentAnomalyLib" in text


def test_top_level_cmake():
    text = (REPO / "CMakeLists.txt").read_text()
    assert "cmake_minimum_required(VERSION 3.16.3...3.19.7" in text
    assert re.search(r"^project\(LatentAnomaly\)", text, re.M)
    for variable in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert re.search(rf"set\(EXTENSION_{variable} \"[^\"]+\"\)", text), variable
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    screenshots = _cmake_set(text, "EXTENSION_SCREENSHOTURLS").split()
    prefix = "https://raw.githubusercontent.com/latent-anomaly/SlicerLatentAnomaly/main/"
    for url in screenshots:  # each picture named for the extension index exists in this repository
        assert url.startswith(prefix) and (REPO / url[len(prefix) :]).is_file(), url
        assert _png_size(REPO / url[len(prefix) :])[0] >= 400 and (REPO / url[len(prefix) :]).stat().st_size < 300_000
    assert screenshots
    assert 'set(EXTENSION_HOMEPAGE "https://github.com/latent-anomaly/SlicerLatentAnomaly")' in text
    order = [
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "add_subdirectory(LatentAnomaly)",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ]
    positions = [text.index(item) for item in order]
    assert positions == sorted(positions)
    assert text.rstrip().endswith("include(${Slicer_EXTENSION_CPACK})")
    assert not (REPO / "LatentAnomalyLib" / "CMakeLists.txt").exists()


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


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_configures_and_installs_with_a_stub_slicer(tmp_path):
    """Runs both CMakeLists.txt against stub Slicer macros to check syntax and what gets installed where."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "SlicerConfig.cmake").write_text(
        textwrap.dedent("""
        set(Slicer_USE_FILE ${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake)
        set(Slicer_EXTENSION_GENERATE_CONFIG ${CMAKE_CURRENT_LIST_DIR}/empty.cmake)
        set(Slicer_EXTENSION_CPACK ${CMAKE_CURRENT_LIST_DIR}/empty.cmake)
        set(Slicer_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer/qt-scripted-modules)
        set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer/qt-scripted-modules)
    """)
    )
    (stub / "UseSlicer.cmake").write_text(
        textwrap.dedent("""
        set(BUILD_TESTING ON)
        enable_testing()
        macro(slicerMacroBuildScriptedModule)
          cmake_parse_arguments(MY "WITH_GENERIC_TESTS;WITH_SUBDIR" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
          foreach(f ${MY_SCRIPTS} ${MY_RESOURCES})
            get_filename_component(d ${f} DIRECTORY)
            install(FILES ${f} DESTINATION ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}/${d})
          endforeach()
        endmacro()
        macro(slicer_add_python_unittest)
          cmake_parse_arguments(MY "" "SCRIPT" "" ${ARGN})
          get_filename_component(n ${MY_SCRIPT} NAME_WE)
          add_test(NAME py_${n} COMMAND ${CMAKE_COMMAND} -E echo)
        endmacro()
    """)
    )
    (stub / "empty.cmake").write_text("")
    build, prefix = tmp_path / "build", tmp_path / "install"
    configure = subprocess.run(
        ["cmake", "-S", str(REPO), "-B", str(build), f"-DSlicer_DIR={stub}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert configure.returncode == 0, configure.stdout + configure.stderr
    install = subprocess.run(
        ["cmake", "--install", str(build), "--prefix", str(prefix)], capture_output=True, text=True, check=False
    )
    assert install.returncode == 0, install.stdout + install.stderr
    modules = prefix / "lib" / "Slicer" / "qt-scripted-modules"
    assert (modules / "LatentAnomaly.py").is_file() and (modules / "LatentAnomalyGUI" / "logic.py").is_file()
    library = sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "LatentAnomalyLib").rglob("*.py")
        if "__pycache__" not in p.parts
    )
    installed = sorted(p.relative_to(modules).as_posix() for p in (modules / "LatentAnomalyLib").rglob("*.py"))
    assert installed == library
    assert (build / "lib" / "Slicer" / "qt-scripted-modules" / "LatentAnomalyLib" / "cli" / "main.py").is_file()
    if (BUNDLE / "manifest.json").is_file():
        assert (modules / "models" / "latent-anomaly-t1" / "manifest.json").is_file()


# ----- extension index entry and documentation ---------------------------------------------------

# Slicer/Slicer Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json (draft-07), the parts it constrains.
CATALOG_SCHEMA_ID = (
    "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json"
)
CATALOG_REQUIRED = ("$schema", "category", "scm_url")
CATALOG_TYPES = {
    "$schema": str,
    "category": str,
    "scm_url": str,
    "scm_revision": str,
    "scm_type": str,
    "build_dependencies": list,
    "build_subdirectory": str,
    "enabled": bool,
    "tier": int,
}


def _cmake_set(text: str, variable: str) -> str:
    match = re.search(rf'set\({variable} "([^"]*)"\)', text)
    assert match, variable
    return match.group(1)


def test_extension_index_entry_follows_the_catalog_schema_and_the_cmake_metadata():
    path = REPO / "LatentAnomaly.json"
    entry = json.loads(path.read_text())
    assert entry["$schema"].split("#")[0] == CATALOG_SCHEMA_ID
    assert all(key in entry for key in CATALOG_REQUIRED)
    assert set(entry) <= set(CATALOG_TYPES), set(entry) - set(CATALOG_TYPES)  # additionalProperties: false
    for key, value in entry.items():
        assert isinstance(value, CATALOG_TYPES[key]) and not (CATALOG_TYPES[key] is int and isinstance(value, bool))
    assert entry.get("tier", 5) in (1, 3, 5) and entry.get("scm_type", "git") in ("git", "local")
    assert all(isinstance(item, str) for item in entry.get("build_dependencies", []))

    cmake = (REPO / "CMakeLists.txt").read_text()
    assert path.stem == re.search(r"^project\((\w+)\)", cmake, re.M).group(1)  # the index checks this
    assert entry["category"] == _cmake_set(cmake, "EXTENSION_CATEGORY")
    assert entry["build_dependencies"] == _cmake_set(cmake, "EXTENSION_DEPENDS").split()
    assert entry["scm_url"] == _cmake_set(cmake, "EXTENSION_HOMEPAGE")
    assert entry["scm_url"].startswith("https://") and "slicer" in entry["scm_url"].rsplit("/", 1)[-1].lower()
    assert entry["build_subdirectory"] == "."


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
