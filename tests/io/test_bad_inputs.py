"""A corpus of bad inputs: each gives one `error:` line, a non-zero exit, no partial output, an untouched input.

The files are generated here (nothing committed): broken files, wrong shapes and types, lying
headers (a singular orientation, 4000^3 voxels in a tiny file), unusable geometry, bad output
folders. Almost all are refused before the model is loaded, so the corpus runs in seconds.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main
from tests.io.bad_files import CASES, _volume

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _fingerprint(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file in a folder (the input must stay byte-identical)."""
    if not path.exists():
        return {}
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _run(argv: list[str], capfd) -> tuple[int, list[str]]:
    """Exit code and stderr lines, captured at the file-descriptor level (ITK/GDCM print from C++)."""
    code = main(argv)
    err = capfd.readouterr().err.strip().splitlines()
    return code, err


def _assert_one_error(code: int, err: list[str], words: str) -> None:
    assert code != 0
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    assert words.lower() in err[0].lower(), err


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_cleanly(tmp_path, name, capfd):
    make, words = CASES[name]
    source = make(tmp_path)
    before = _fingerprint(source)
    out = tmp_path / "out"
    code, err = _run(["detect", str(source), "--out", str(out), "--device", "cpu", "--progress", "none"], capfd)
    _assert_one_error(code, err, words)
    if name == "dicom_two_series":
        assert "1.2.826.0.1.3680043.2.1125.1.1" in err[0] and "localiser" in err[0]
    assert not out.exists(), "a failed detection must leave no output folder behind"
    assert _fingerprint(source) == before


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path, capfd):
    source = tmp_path / "locked.nii.gz"
    sitk.WriteImage(_volume(), str(source))
    source.chmod(0)
    try:
        code, err = _run(["detect", str(source), "--out", str(tmp_path / "out")], capfd)
    finally:
        source.chmod(0o644)
    _assert_one_error(code, err, "permission denied")
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder(tmp_path, ixi_sample, capfd):
    before = _fingerprint(ixi_sample)
    if RUNNING_AS_ROOT:  # permissions do not stop root: put the folder under a regular file instead
        (tmp_path / "somefile.txt").write_text("x")
        out = tmp_path / "somefile.txt" / "sub"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        out = locked / "sub"
    try:
        code, err = _run(["detect", str(ixi_sample), "--out", str(out)], capfd)
    finally:
        if not RUNNING_AS_ROOT:
            (tmp_path / "locked").chmod(0o755)
    _assert_one_error(code, err, "output folder")
    assert not out.exists()
    assert _fingerprint(ixi_sample) == before


def test_output_path_that_is_a_file(tmp_path, ixi_sample, capfd):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    code, err = _run(["detect", str(ixi_sample), "--out", str(target)], capfd)
    _assert_one_error(code, err, "not a folder")
    assert target.read_text() == "keep me"


def test_existing_results_are_not_overwritten(tmp_path, ixi_sample, capfd):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"earlier": true}')
    (out / "heatmap.nii.gz").write_bytes(b"earlier heatmap")
    before = _fingerprint(out)
    code, err = _run(["detect", str(ixi_sample), "--out", str(out)], capfd)
    _assert_one_error(code, err, "--overwrite")
    assert _fingerprint(out) == before


def test_not_a_head_gives_a_warning_not_an_error(tmp_path, capfd):
    """A box phantom goes through detection; its score is far off every training scan: say so."""
    box = np.zeros((90, 120, 120), np.float32)
    box[20:70, 30:90, 30:90] = 100
    box += np.random.default_rng(0).normal(0, 2, box.shape).astype(np.float32)
    image = sitk.GetImageFromArray(box)
    image.SetSpacing((2.0, 2.0, 2.0))
    source = tmp_path / "box.nii.gz"
    sitk.WriteImage(image, str(source))
    out = tmp_path / "out"
    out.mkdir()  # an existing empty folder is fine
    code, err = _run(["detect", str(source), "--out", str(out), "--device", "cpu", "--progress", "none"], capfd)
    assert code == 0
    assert err and all(line.startswith(("warning: ", "note: ")) for line in err)
    assert any(line.startswith("warning: ") and "brain MRI" in line for line in err)
    summary = (out / "summary.json").read_text()
    assert "may not be a T1-weighted brain MRI" in summary


def test_no_traceback_from_a_real_process(tmp_path):
    source = CASES["singular_affine"][0](tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "LatentAnomalyLib.cli", "detect", str(source), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "singular" in lines[0]


def test_batch_records_each_bad_input_and_goes_on(tmp_path, capfd):
    folder = tmp_path / "scans"
    folder.mkdir()
    names = ["truncated_nii_gz", "nan_voxels", "anisotropic", "too_large_for_memory", "dicom_two_series"]
    for name in names:
        work = tmp_path / name
        work.mkdir()
        made = CASES[name][0](work)
        made.rename(folder / made.name)
    out = tmp_path / "batch"
    code = main(["batch", str(folder), "--out", str(out), "--device", "cpu", "--progress", "none"])
    assert code == 3
    rows = list(csv.DictReader((out / "scores.csv").read_text().splitlines()))
    assert len(rows) == len(names)
    assert all(r["status"] == "failed" and r["error"] for r in rows)
    errors = " | ".join(r["error"] for r in rows)
    for name in names:
        assert CASES[name][1].lower() in errors.lower(), name
    assert all(r["rank"] == "" and r["flagged"] == "" for r in rows)
    failed_lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == len(names)
    assert not [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
