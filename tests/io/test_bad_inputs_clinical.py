"""More of the bad-input corpus: what clinical exports and hand-edited files get wrong.

NaN/Inf hidden in NIfTI (ITK would read them as 0, a fake lesion), DICOM series with a missing or
duplicated slice (ITK would average the spacing), MetaImage headers with short, missing or
far-away data files, slices beyond 6 mm, absurd anisotropy, extra non-singleton dimensions. Same
contract as ``test_bad_inputs``: exit 2, one `error:` line naming the reason, no traceback, no
output folder, the input byte-identical. All are refused before the model is loaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from tests.io.bad_files import _volume, write_dicom_series
from tests.io.test_bad_inputs import _assert_one_error, _fingerprint, _run

UID = "1.2.826.0.1.3680043.2.1125.3.1"


def _nifti_with(value: float, name: str, dtype=np.float32) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        data = np.random.default_rng(0).random((40, 40, 40)).astype(dtype) * 100
        data[10:20, 10:20, 10:20] = value
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp / name))
        return tmp / name

    return build


def _dicom(change: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = tmp / f"dicom_{change}"
        folder.mkdir()
        write_dicom_series(folder, UID, "T1", 0, slices=12)
        if change == "missing":
            (folder / "im0005.dcm").unlink()
        elif change == "missing_last_but_one":
            (folder / "im0010.dcm").unlink()
        elif change == "duplicate":
            shutil.copyfile(folder / "im0005.dcm", folder / "im0005_copy.dcm")
        return folder

    return build


def _mhd(change: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        header = tmp / "scan.mhd"
        sitk.WriteImage(_volume((30, 30, 30)), str(header))
        raw = tmp / "scan.raw"
        if change == "short":
            raw.write_bytes(raw.read_bytes()[:1000])
        elif change == "missing":
            raw.unlink()
        elif change == "elsewhere":
            other = tmp / "other"
            other.mkdir()
            raw.rename(other / "scan.raw")
            header.write_text(header.read_text().replace("ElementDataFile = scan.raw", "ElementDataFile = ../tmpx/other/scan.raw"))
            (tmp / "sub").mkdir()
            moved = tmp / "sub" / "scan.mhd"
            header.rename(moved)
            (tmp / "tmpx").symlink_to(tmp)
            return moved
        elif change == "absolute":
            header.write_text(header.read_text().replace("ElementDataFile = scan.raw", f"ElementDataFile = {raw}"))
        return header

    return build


def _mha_local_truncated(tmp: Path) -> Path:
    path = tmp / "cut.mha"
    sitk.WriteImage(_volume((30, 30, 30)), str(path), useCompression=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5000])
    return path


def _spacing(spacing: tuple[float, float, float], shape=(24, 24, 24)) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        image = _volume(shape, spacing)
        sitk.WriteImage(image, str(tmp / "spacing.nii.gz"))
        return tmp / "spacing.nii.gz"

    return build


def _extra_dims(shape: tuple[int, ...]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        nib.save(nib.Nifti1Image(np.ones(shape, np.float32), np.eye(4)), str(tmp / "extra.nii.gz"))
        return tmp / "extra.nii.gz"

    return build


# name -> (make input in tmp folder, expected words in the error)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "nan_block_in_float32_nifti": (_nifti_with(np.nan, "nan.nii.gz"), "NaN"),
    "inf_block_in_float64_nifti": (_nifti_with(np.inf, "inf.nii.gz", np.float64), "infinite"),
    "nan_in_uncompressed_nifti": (_nifti_with(np.nan, "nan.nii"), "NaN"),
    "negative_inf_in_nifti": (_nifti_with(-np.inf, "neg_inf.nii.gz"), "infinite"),
    "dicom_missing_slice": (_dicom("missing"), "not evenly spaced"),
    "dicom_missing_slice_near_end": (_dicom("missing_last_but_one"), "not evenly spaced"),
    "dicom_duplicated_slice": (_dicom("duplicate"), "duplicated slice"),
    "mhd_short_data_file": (_mhd("short"), "truncated"),
    "mhd_missing_data_file": (_mhd("missing"), "missing"),
    "mhd_data_file_in_another_folder": (_mhd("elsewhere"), "outside the header's folder"),
    "mhd_data_file_absolute_path": (_mhd("absolute"), "outside the header's folder"),
    "mha_local_data_truncated": (_mha_local_truncated, "truncated"),
    "slices_7mm": (_spacing((1.0, 1.0, 7.0)), "thicker than the 6 mm limit"),
    "slices_10mm_in_x": (_spacing((10.0, 1.0, 1.0)), "thicker than the 6 mm limit"),
    "anisotropy_beyond_16": (_spacing((0.25, 0.25, 5.0), (40, 40, 24)), "too anisotropic"),
    "five_d_with_three_volumes": (_extra_dims((20, 20, 20, 1, 3)), "give one 3D volume"),
    "four_d_with_two_volumes": (_extra_dims((20, 20, 20, 2)), "4D"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_clinical_bad_input_is_refused_cleanly(tmp_path, name, capfd):
    make, words = CASES[name]
    source = make(tmp_path)
    before = _fingerprint(source)
    out = tmp_path / "out"
    code, err = _run(["detect", str(source), "--out", str(out), "--device", "cpu", "--progress", "none"], capfd)
    assert code == 2, err
    _assert_one_error(code, err, words)
    assert "unexpected failure" not in err[0]
    assert not out.exists()
    assert _fingerprint(source) == before


def test_no_cxx_noise_from_a_short_mhd_in_a_real_process(tmp_path):
    source = _mhd("short")(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "LatentAnomalyLib.cli", "detect", str(source), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "truncated" in lines[0], lines
    assert "No such file" not in lines[0]
