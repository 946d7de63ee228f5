"""Slicer module without Slicer: the CMake lists, configuring and installing with a stub Slicer, and the extension index entry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap

import pytest

from tests.gui.test_slicer_packaging import _png_size
from tests.slicer_gui import (
    BUNDLE,
    MODULE_DIR,
    REPO,
)


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
