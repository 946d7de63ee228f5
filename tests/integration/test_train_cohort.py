"""Training on your own cohort: scans from a folder or CSV, a stored split, resume, detect with the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.latent_atlas_sum import IDENTITY_POSTPROCESS as IDENTITY


def _touch(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_folder_and_csv_cohorts(tmp_path):
    _touch(tmp_path / "scans", ["b.nii.gz", "a.nrrd", "c.mha", "notes.txt"])
    cases = datasets.cohort_cases(tmp_path / "scans", "FLAIR")
    assert [c.case_id for c in cases] == ["a", "b", "c"]
    assert set(cases[0].images) == {"flair"}
    csv = tmp_path / "cohort.csv"
    csv.write_text("path,id\nscans/b.nii.gz,s2\nscans/a.nrrd,\n")
    assert [(c.case_id, c.images["t1"].name) for c in datasets.cohort_cases(csv)] == [("s2", "b.nii.gz"), ("a", "a.nrrd")]


@pytest.mark.parametrize(
    "content, message",
    [
        ("file,id\nx.nii.gz,a\n", "'path' column"),
        ("path\nscans/missing.nii.gz\n", "does not exist"),
        ("path,id\nscans/a.nrrd,x\nscans/b.nii.gz,x\n", "appears twice"),
    ],
)
def test_bad_csv_cohorts_are_refused(tmp_path, content, message):
    _touch(tmp_path / "scans", ["a.nrrd", "b.nii.gz"])
    csv = tmp_path / "cohort.csv"
    csv.write_text(content)
    with pytest.raises(ValueError, match=message):
        datasets.cohort_cases(csv)


def test_split_is_seeded_and_keeps_two_training_scans():
    ids = [f"s{i}" for i in range(10)]
    split = datasets.make_split(ids, 0.2, seed=1)
    assert split == datasets.make_split(ids, 0.2, seed=1)
    assert len(split["val"]) == 2 and sorted(split["train"] + split["val"]) == sorted(ids)
    assert len(datasets.make_split(ids[:3], 0.9, seed=1)["train"]) == 2
    with pytest.raises(ValueError, match="at least 3 scans"):
        datasets.make_split(ids[:2], 0.2, seed=1)


@pytest.mark.parametrize("scans", ["missing-folder", "empty"])
def test_train_with_unusable_scans_is_one_error_line(tmp_path, capsys, scans):
    (tmp_path / "empty").mkdir()
    code = main(["train", "--scans", str(tmp_path / scans), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ")


def _train_argv(folder: Path, out: Path) -> list[str]:
    return [
        "train",
        "--scans",
        str(folder),
        "--out",
        str(out),
        "--config",
        "configs/vae_t1.json",
        "--device",
        "cpu",
        "--val-fraction",
        "0.25",
        "--progress",
        "lines",
        "--override",
        "encoder_train.epochs=1",
        "--override",
        "encoder_train.batch_size=2",
        "--override",
        'latent_space={"reference_size": 16, "whiten_size": 64, "standardise_samples": 32}',
        "--override",
        'scorers=[{"name": "gaussian"}, {"name": "vae_kl"}, {"name": "gaussian4mm"}, '
        '{"name": "atlas", "params": {"direction": "low"}}, '
        f'{{"name": "gaussian4mm_atlas", "postprocess": {json.dumps(IDENTITY)}}}]',
        "--override",
        'default_scorer="gaussian"',
    ]


@pytest.mark.slow
def test_tiny_model_from_a_plain_folder_detects_in_the_scans_geometry(tmp_path, data_root, ixi_sample, capsys):
    """Four IXI heads (with skull, no brain labels) in a folder -> bundle -> detect with its family score."""
    folder = tmp_path / "my scans"
    folder.mkdir()
    for case in datasets.ixi_cases("train", data_root)[:4]:
        shutil.copy(case.images["t1"], folder / f"{case.case_id}.nii.gz")
    out = tmp_path / "bundle"
    assert main(_train_argv(folder, out)) == 0
    printed = first_printed = capsys.readouterr().out
    assert "copied from the reference model" in printed
    assert "preprocess train 3/3" in printed and "eta" in printed and "encoder 1/1" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["sequence"] == "T1" and config["encoder"]["family"] == "vae"
    split = json.loads((tmp_path / "bundle.work" / "split.json").read_text())
    assert config["training_data"]["validation_subjects"] == split["val"] and len(split["val"]) == 1
    assert sorted(split["train"] + split["val"]) == sorted(p.name[:-7] for p in folder.iterdir())
    assert set(config["scorers"]) == {"gaussian", "vae_kl", "gaussian4mm", "atlas", "gaussian4mm_atlas"}
    assert "arrays" not in config["scorers"]["gaussian4mm_atlas"]  # a combined scorer is JSON only

    # An interrupted preprocessing stage: the assembled caches and one scan's cache are gone.
    work = tmp_path / "bundle.work"
    first_weights = json.loads((out / "manifest.json").read_text())["files"]
    for name in ("cache/train.npz", "cache/val.npz", f"cache/scans/{split['train'][0]}.npz"):
        (work / name).unlink()
    assert main(_train_argv(folder, out)) == 0
    printed = printed_again = capsys.readouterr().out
    assert printed.count(" preprocessed;") == 1 and "already done, skipped" in printed
    assert "encoder exists; skipping" in printed
    again = json.loads((out / "manifest.json").read_text())["files"]
    assert again["encoder.safetensors"] == first_weights["encoder.safetensors"]
    assert all(again[f"scorers/{s}.json"] == first_weights[f"scorers/{s}.json"] for s in ("gaussian", "vae_kl"))

    results = tmp_path / "detect"
    code = main(["detect", str(ixi_sample), "--model", str(out), "--scorer", "vae_kl", "--out", str(results)])
    assert code == 0
    scan = sitk.ReadImage(str(ixi_sample))
    for name in ("heatmap.nii.gz", "labelmap.nii.gz"):
        image = sitk.ReadImage(str(results / name))
        assert image.GetSize() == scan.GetSize()
        assert image.GetSpacing() == pytest.approx(scan.GetSpacing())
        assert image.GetOrigin() == pytest.approx(scan.GetOrigin())
        assert image.GetDirection() == pytest.approx(scan.GetDirection())
    summary = json.loads((results / "summary.json").read_text())
    assert summary["model"]["scorer"] == "vae_kl"

    # The calibration stage: the default scorer's sets cross-fitted over the 4 scans, so detect gives p-values.
    assert "calibration: 4 healthy scans (training scans of my scans)" in first_printed
    assert "calibration records exist; reusing them" in printed_again
    calibrated = tmp_path / "detect-default"
    assert main(["detect", str(ixi_sample), "--model", str(out), "--out", str(calibrated), "--alpha", "0.2"]) == 0
    summary = json.loads((calibrated / "summary.json").read_text())
    assert summary["model"]["scorer"] == "gaussian" and summary["subject_p_value"] is not None
    assert summary["subject_p_value"] in {i / 5 for i in range(1, 6)}  # (1 + #{calibration >= s}) / (4 + 1)
    assert summary["conformal"]["calibration_source"] == "training scans of my scans (4 scans)"
    assert json.loads((out / "config.json").read_text())["training_data"]["train_subjects"] == split["train"]

    # The combined scorer trained beside its parts: its map is the parts' maps summed, at its own threshold.
    maps = Detector(Model.load(out), DetectOptions(device="cpu")).detect_scorers(
        read_image(ixi_sample), ["gaussian4mm", "atlas", "gaussian4mm_atlas"]
    )
    expected = maps["gaussian4mm"].model_heatmap + 0.5 * maps["atlas"].model_heatmap
    assert (maps["gaussian4mm_atlas"].model_heatmap == expected).all()
    thresholds = {n: r.summary["voxel_threshold"] for n, r in maps.items()}
    assert len(set(thresholds.values())) == 3  # calibrated on the validation scan for each map
