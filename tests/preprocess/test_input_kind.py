"""Input-kind checks: scans that are not T1-weighted, contrast-inverted or cropped are refused or flagged."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.preprocess.input_kind import check_input_kind, cropped_side, model_sequence

CPU = ["--device", "cpu", "--progress", "none"]
BRATS_CASE = "Brats18_CBICA_ABM_1"


def _detect(source: Path, out: Path, capfd) -> tuple[int, list[str]]:
    code = main(["detect", str(source), "--out", str(out), *CPU])
    return code, capfd.readouterr().err.strip().splitlines()


def test_sequence_recorded_in_the_bundle_defaults_to_t1():
    assert model_sequence({}) == "T1"
    assert model_sequence({"modality": "T1"}) == "T1"
    assert model_sequence({"sequence": "FLAIR", "modality": "T1"}) == "FLAIR"


def _fake_pre(model, csf_value: float) -> SimpleNamespace:
    """A preprocessed scan on the model grid: WM 1.0, GM 0.8, CSF ``csf_value`` (scale 1, offset 0)."""
    t = model.template
    image = np.where(t.wm >= 0.5, 1.0, 0.8).astype(np.float32)
    image[(t.gm < 0.1) & (t.wm < 0.1)] = csf_value
    grid = model.preprocess.grid.image()
    return SimpleNamespace(
        image=image,
        mask=t.mask.copy(),
        info={"scale": 1.0, "offset": 0.0},
        native=grid,
        native_mask=np.zeros(image.shape, bool),
        transform=sitk.AffineTransform(3),
    )


def test_csf_as_bright_as_white_matter_is_refused(model):
    measures, warnings = check_input_kind(_fake_pre(model, 0.4), model)
    assert measures["csf_to_wm"] == pytest.approx(0.4) and measures["brain_coverage"] == 1.0 and warnings == []
    with pytest.raises(InputError, match=r"CSF is as bright as white matter.*trained on T1"):
        check_input_kind(_fake_pre(model, 1.2), model)
    flair_model = SimpleNamespace(**{**vars(model), "config": {**model.config, "sequence": "FLAIR"}})
    measures, _ = check_input_kind(_fake_pre(model, 1.2), flair_model)  # T1 rules do not apply to a FLAIR model
    assert measures["model_sequence"] == "FLAIR" and "csf_to_wm" not in measures


def test_cropped_side_names_the_cut_face():
    mask = np.zeros((40, 50, 60), bool)
    mask[0:20, 10:40, 10:50] = True  # runs into z index 0
    image = sitk.Image(60, 50, 40, sitk.sitkUInt8)
    assert cropped_side(image, mask) == "inferior"  # identity direction: index z 0 is the inferior end (LPS)
    image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    assert cropped_side(image, mask) == "superior"
    mask[:] = False
    mask[5:30, 10:40, 10:50] = True
    assert cropped_side(image, mask) == ""


def test_contrast_inverted_scan_is_refused(tmp_path, ixi_sample, capfd):
    image = sitk.ReadImage(str(ixi_sample), sitk.sitkFloat32)
    values = sitk.GetArrayFromImage(image)
    inverted = sitk.GetImageFromArray((values.max() - values).astype(np.float32))
    inverted.CopyInformation(image)
    source = tmp_path / "inverted.nii.gz"
    sitk.WriteImage(inverted, str(source))
    code, err = _detect(source, tmp_path / "out", capfd)
    assert code == 2 and len(err) == 1 and "T1-weighted" in err[0], err
    assert not (tmp_path / "out").exists()


def test_cropped_upper_half_is_refused_saying_what_is_missing(tmp_path, ixi_sample, capfd):
    image = sitk.ReadImage(str(ixi_sample))
    superior = int(np.argmax(np.abs(np.asarray(image.GetDirection()).reshape(3, 3)[2])))
    half = image.GetSize()[superior] // 2
    crop = [slice(None)] * 3
    crop[superior] = slice(half, None)
    source = tmp_path / "upper_half.nii.gz"
    sitk.WriteImage(image[tuple(crop)], str(source))
    code, err = _detect(source, tmp_path / "out", capfd)
    assert code == 2 and len(err) == 1 and "inferior edge of the field of view" in err[0], err


def test_brats_t2_is_refused(tmp_path, data_root, capfd):
    code, err = _detect(data_root / "brats2018" / BRATS_CASE / f"{BRATS_CASE}_t2.nii.gz", tmp_path / "out", capfd)
    assert code == 2 and len(err) == 1 and "T1-weighted" in err[0], err


def test_brats_flair_gets_a_sequence_warning(tmp_path, data_root, capfd):
    code, err = _detect(data_root / "brats2018" / BRATS_CASE / f"{BRATS_CASE}_flair.nii.gz", tmp_path / "out", capfd)
    assert code == 0
    assert any(line.startswith("warning: ") and "may be a FLAIR" in line for line in err), err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["gm_to_wm"] >= 0.93 and summary["input"]["model_sequence"] == "T1"
