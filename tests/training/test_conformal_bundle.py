"""`training.conformal_bundle.write` makes a format-2 bundle from either format: the calibration-set entry lands in
the cross-fitted scorer's own file, every other file is copied byte for byte."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from LatentAnomalyLib.bundle.contents import read
from LatentAnomalyLib.bundle.format import Bundle, sha256
from LatentAnomalyLib.training.conformal_bundle import SETS_FILE, write
from tests.bundle.test_bundle_migration import FORMAT1
from tests.conftest import MODEL

SETTINGS = {"folds": 2, "seed": 7, "subject_statistic": "normalised", "region_statistic": "peak", "alpha": 0.1}


def _records() -> dict:
    rows = [
        {"case_id": f"c{i}", "part": "train" if i < 3 else "val", "subject": {"normalised": float(i)},
         "regions": [{"volume_ml": 0.2 * i, "peak_score": 3.0 + i, "mean_score": 2.5}] if i % 2 else []}
        for i in range(4)
    ]
    return {"scorer": "knn", "voxel_threshold": 2.66, "folds": 2, "seed": 7, "records": rows}


@pytest.mark.parametrize("fmt", [1, 2])
def test_sets_entry_lands_in_the_scorer_file(tmp_path, fmt):
    source = MODEL
    if fmt == 1:
        source = tmp_path / "old"
        shutil.copytree(FORMAT1, source)
        for name in json.loads((FORMAT1 / "manifest.json").read_text())["files"]:
            if not (source / name).exists():
                shutil.copyfile(MODEL / name, source / name)
    out = write(source, _records(), SETTINGS, "9.9.9", tmp_path / "new")
    bundle = Bundle.load(out)
    assert bundle.manifest["format_version"] == 2 and not bundle.has("calibration.json")
    contents = read(bundle)
    entry = contents.calibration("knn")["conformal"]
    assert entry["settings"] == SETTINGS and entry["n_scans"] == 4 and entry["case_ids"] == ["c0", "c1", "c2", "c3"]
    assert contents.config["version"] == "9.9.9" and "conformal" not in contents.config
    assert contents.calibration("gaussian4mm")["conformal"]["n_scans"] == 118  # the other scorer's entry kept
    arrays = bundle.arrays(SETS_FILE)
    assert np.array_equal(arrays["knn.subject_scores"], [0.0, 1.0, 2.0, 3.0])
    assert np.array_equal(arrays["knn.region_max"], [0.0, 4.0, 0.0, 6.0])
    shipped = Bundle.load(source).arrays(SETS_FILE)
    assert all(np.array_equal(arrays[k], v, equal_nan=True) for k, v in shipped.items())  # the other scorers' sets kept beside knn's
    for name in ("encoder.safetensors", "scorers/knn.safetensors", "template_t1.nii.gz"):
        assert bundle.manifest["files"][name] == sha256(MODEL / name)


def test_ages_and_bands_are_stored_and_the_model_description_kept(tmp_path):
    """Ages by case id (one unknown) become the scorer's ``ages`` array and its entry's bands; the bundle's config
    keeps the model's own description (the sets' description goes to the entry only)."""
    out = write(MODEL, _records(), SETTINGS, "9.9.9", tmp_path / "new", "the model", {"c0": 25.0, "c1": 70.5, "c3": 45})
    bundle = Bundle.load(out)
    contents = read(bundle)
    entry = contents.calibration("knn")["conformal"]
    assert entry["age_cuts"] == [40.0, 60.0] and entry["n_scans_with_age"] == 3
    assert contents.config["description"] == "the model" and entry["description"].startswith("2-fold cross-fit")
    ages = bundle.arrays(SETS_FILE)["knn.ages"]
    assert ages[0] == 25.0 and ages[1] == 70.5 and np.isnan(ages[2]) and ages[3] == 45.0
    plain = write(MODEL, _records(), SETTINGS, "9.9.9", tmp_path / "plain")  # no ages: nothing about them
    assert "age_cuts" not in read(Bundle.load(plain)).calibration("knn")["conformal"]
    assert "knn.ages" not in Bundle.load(plain).arrays(SETS_FILE)
