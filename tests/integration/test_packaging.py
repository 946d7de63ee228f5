"""A wheel built from the repository carries the default model, and an installed (non-editable) copy detects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import SimpleITK as sitk

from tests.conftest import REPO

MODEL = REPO / "models" / "latent-anomaly-t1"
BUILD_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "LatentAnomalyLib")


def _source_copy(root: Path) -> Path:
    """The files a wheel is built from, copied so that the build leaves nothing in the working tree."""
    source = root / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in BUILD_FILES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    shutil.copytree(MODEL, source / "models" / MODEL.name, ignore=ignore)
    return source


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, **kwargs)


@pytest.mark.slow
def test_wheel_carries_the_model_and_an_installed_copy_detects(tmp_path, ixi_sample):
    source = _source_copy(tmp_path)
    dist = tmp_path / "dist"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        cwd=source,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("latent_anomaly-*.whl")
    manifest = json.loads((MODEL / "manifest.json").read_text())
    inside = f"LatentAnomalyLib/models/{MODEL.name}/"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {inside + name for name in [*manifest["files"], "manifest.json"]} <= names
        assert archive.read(inside + "encoder.safetensors") == (MODEL / "encoder.safetensors").read_bytes()

    # A fresh venv with only the wheel; its dependencies come from this venv's site-packages on PYTHONPATH
    # (PYTHONPATH does not run .pth files, so this checkout's editable install is not visible there).
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    install = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)])
    assert install.returncode == 0, install.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("LATENT_ANOMALY_MODEL", "PYTHONPATH")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import LatentAnomalyLib; print(LatentAnomalyLib.__file__)"], cwd=work, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    command = venv / "bin" / "latent-anomaly"
    info = _run([str(command), "info", "--json"], cwd=work, env=env)
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert Path(described["path"]).is_relative_to(venv) and described["checksums"] == "verified"
    assert described["version"] == manifest["model_version"]

    detect = _run(
        [str(command), "detect", str(ixi_sample), "--out", "results", "--device", "cpu", "--progress", "none"],
        cwd=work,
        env=env,
    )
    assert detect.returncode == 0, detect.stderr
    summary = json.loads((work / "results" / "summary.json").read_text())
    assert summary["model"]["version"] == manifest["model_version"]
    heatmap = sitk.ReadImage(str(work / "results" / "heatmap.nii.gz"))
    assert heatmap.GetSize() == sitk.ReadImage(str(ixi_sample)).GetSize()
