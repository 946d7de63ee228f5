"""A corpus of bad inputs: each gives one `error:` line, a non-zero exit, no partial output, an untouched input.

The files are generated here (nothing committed): broken files, wrong shapes and types, lying
headers (a singular orientation, 4000^3 voxels in a tiny file), unusable geometry, bad output
folders. Almost all are refused before the model is loaded, so the corpus runs in seconds.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import locale
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _volume(shape=(24, 24, 24), spacing=(1.0, 1.0, 1.0), dtype=np.float32) -> sitk.Image:
    data = np.random.default_rng(0).random(shape[::-1]).astype(dtype)
    image = sitk.GetImageFromArray(data)
    image.SetSpacing(spacing)
    return image


def _raw_nifti(path: Path, data: np.ndarray, shape=None, pixdim=(1.0, 1.0, 1.0), sform=None) -> Path:
    """Write NIfTI bytes directly, so that headers a library would refuse to write can be made."""
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    header.set_data_shape(shape or data.shape)
    header["pixdim"][1 : 1 + len(pixdim)] = pixdim
    header["qform_code"] = 0
    if sform is not None:
        header["sform_code"] = 1
        header["srow_x"], header["srow_y"], header["srow_z"] = sform
    header["vox_offset"] = 352
    blob = header.binaryblock + b"\0" * 4 + np.asarray(data).tobytes(order="F")
    path.write_bytes(gzip.compress(blob) if path.name.endswith(".gz") else blob)
    return path


def _mha_with_spacing(path: Path, spacing: str) -> Path:
    sitk.WriteImage(_volume(), str(path))
    text = path.read_bytes()
    return _write(path, text.replace(b"ElementSpacing = 1 1 1", f"ElementSpacing = {spacing}".encode()))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _with_value(path: Path, value: float) -> Path:
    data = sitk.GetArrayFromImage(_volume())
    data[3, 4, 5] = value
    sitk.WriteImage(sitk.GetImageFromArray(data), str(path))  # MetaImage keeps NaN/Inf (NIfTI readers zero them)
    return path


def _truncated(tmp: Path) -> Path:
    full = tmp / "full.nii.gz"
    sitk.WriteImage(_volume((40, 40, 40)), str(full))
    data = full.read_bytes()
    full.unlink()
    return _write(tmp / "truncated.nii.gz", data[: len(data) // 2])


def _truncated_plain(tmp: Path) -> Path:
    full = tmp / "full.nii"
    sitk.WriteImage(_volume((40, 40, 40)), str(full))
    data = full.read_bytes()
    full.unlink()
    return _write(tmp / "truncated.nii", data[: len(data) - 1000])


def _dicom_two_series(tmp: Path) -> Path:
    folder = tmp / "dicom"
    folder.mkdir()
    write_dicom_series(folder, "1.2.826.0.1.3680043.2.1125.1.1", "T1 MPRAGE", 0)
    write_dicom_series(folder, "1.2.826.0.1.3680043.2.1125.1.2", "localiser", 100)
    return folder


def write_dicom_series(folder: Path, uid: str, description: str, first: int, slices: int = 10) -> None:
    """Slices of one series; GDCM's writer switches the process locale to C, so it is restored after."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_dicom_slices(folder, uid, description, first, slices)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_dicom_slices(folder: Path, uid: str, description: str, first: int, slices: int) -> None:
    image = sitk.Cast(_volume((16, 16, slices), (1.0, 1.0, 2.0)) * 1000, sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(slices):
        slice_ = image[:, :, k]
        origin = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_.SetMetaData("0020|0032", "\\".join(f"{v:f}" for v in origin))
        slice_.SetMetaData("0020|0013", str(k + 1))
        slice_.SetMetaData("0020|000e", uid)
        slice_.SetMetaData("0008|103e", description)
        slice_.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        slice_.SetMetaData("0008|0060", "MR")
        slice_.SetMetaData("0008|0018", f"{uid}.{k + 1}")
        writer.SetFileName(str(folder / f"im{first + k:04d}.dcm"))
        writer.Execute(slice_)


def _sitk(name: str, make: Callable[[], sitk.Image]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / name
        sitk.WriteImage(make(), str(path))
        return path

    return build


def _not_a_brain(tmp: Path) -> Path:
    """A smooth blob: the registration to the template fails, which must be an error, not a heatmap."""
    z, y, x = np.mgrid[:90, :120, :120]
    blob = 100 * np.exp(-(((z - 45) / 20.0) ** 2 + ((y - 60) / 25.0) ** 2 + ((x - 60) / 25.0) ** 2))
    image = sitk.GetImageFromArray(blob.astype(np.float32))
    image.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(image, str(tmp / "blob.nii.gz"))
    return tmp / "blob.nii.gz"


# name -> (make input in tmp folder, expected words in the error)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing_file": (lambda t: t / "missing.nii.gz", "no such file"),
    "unsupported_extension": (lambda t: _write(t / "scan.png", b"\x89PNG\r\n"), "unsupported file type"),
    "empty_file": (lambda t: _write(t / "empty.nii", b""), "empty"),
    "text_named_nii_gz": (lambda t: _write(t / "notes.nii.gz", b"patient notes\n"), "cannot be read"),
    "truncated_nii_gz": (_truncated, "truncated"),
    "truncated_nii": (_truncated_plain, "truncated"),
    "image_2d": (_sitk("flat.nii.gz", lambda: sitk.GetImageFromArray(np.ones((30, 30), np.float32))), "2D"),
    "image_4d": (
        _sitk("series.nii.gz", lambda: sitk.GetImageFromArray(np.ones((3, 10, 10, 10), np.float32), isVector=False)),
        "4D",
    ),
    "zero_size_axis": (
        lambda t: _raw_nifti(t / "zero.nii.gz", np.zeros(0, np.float32), shape=(20, 20, 0)),
        "too small",
    ),
    "tiny_volume": (_sitk("tiny.nii.gz", lambda: _volume((5, 5, 5))), "too small"),
    "all_zero": (_sitk("zeros.nii.gz", lambda: sitk.Image(20, 20, 20, sitk.sitkFloat32)), "same value"),
    "nan_voxels": (lambda t: _with_value(t / "nan.mha", np.nan), "NaN"),
    "inf_voxels": (lambda t: _with_value(t / "inf.mha", np.inf), "infinite"),
    "singular_affine": (
        lambda t: _raw_nifti(
            t / "singular.nii.gz",
            np.ones((20, 20, 20), np.float32),
            sform=([1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]),
        ),
        "singular",
    ),
    "anisotropic": (_sitk("slab.nii.gz", lambda: _volume(spacing=(1.0, 1.0, 20.0))), "anisotropic"),
    "too_large_for_memory": (
        lambda t: _raw_nifti(t / "huge.nii", np.zeros(10, np.float32), shape=(4000, 4000, 4000)),
        "GB",
    ),
    "zero_spacing_mha": (lambda t: _mha_with_spacing(t / "zero_spacing.mha", "0 1 1"), "not positive"),
    "negative_spacing_mha": (lambda t: _mha_with_spacing(t / "negative_spacing.mha", "-2 1 1"), "not positive"),
    "zero_spacing_nifti": (
        lambda t: _raw_nifti(t / "zero_pixdim.nii.gz", np.ones((20, 20, 20), np.float32), pixdim=(0.0, 1.0, 1.0)),
        "zero",
    ),
    "complex_voxels": (
        lambda t: (
            nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.complex64), np.eye(4)), str(t / "complex.nii.gz"))
            or t / "complex.nii.gz"
        ),
        "complex",
    ),
    "rgb_voxels": (
        _sitk(
            "rgb.nii.gz",
            lambda: sitk.GetImageFromArray(np.ones((20, 20, 20, 3), np.uint8), isVector=True),
        ),
        "components per voxel",
    ),
    "empty_folder": (lambda t: (t / "empty_dir").mkdir() or t / "empty_dir", "no DICOM series"),
    "dicom_two_series": (_dicom_two_series, "--series"),
    "not_a_brain": (_not_a_brain, "registration"),
}


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
