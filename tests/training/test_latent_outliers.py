"""The latent outlier criterion's rule (robust z-score of the cross-fitted largest region peak) and how a decision
removes scans from every later stage of a training run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from LatentAnomalyLib.cli.main import build_parser
from LatentAnomalyLib.training.config import STAGES, TrainConfig
from LatentAnomalyLib.training.latent_outliers import (
    OUTLIERS_FILE,
    decide,
    largest_region_peaks,
    removed_ids,
    robust_z,
    settings,
)
from LatentAnomalyLib.training.run import TrainingRun
from tests.conftest import REPO


def test_robust_z_ignores_a_minority_of_outliers():
    healthy = list(np.random.default_rng(0).normal(5.0, 0.3, 30))
    z = robust_z(np.array([*healthy, 9.0, 9.5, 10.0, 12.0]))  # 4 of 34 (11.8%) far above
    assert (z[-4:] > 3.5).all() and (z[:-4] < 3.5).all()
    assert (robust_z(np.ones(5)) == 0).all()  # no spread: nothing to judge by


def test_decide_removes_only_scans_above_z_on_the_high_side():
    stats = {f"h{i}": 5.0 + 0.1 * (i % 7) for i in range(30)} | {"lesion": 8.0, "low": 1.0}
    decision = decide(stats)
    assert decision["removed"] == ["lesion"]  # a scan scoring far lower is not anomalous
    assert decision["robust_z"]["lesion"] > 3.5 > decision["robust_z"]["h6"]
    assert decide({f"h{i}": 5.0 + 0.1 * (i % 7) for i in range(30)})["removed"] == []


def test_largest_region_peaks_of_crossfit_records():
    records = {"records": [{"case_id": "a", "regions": [{"peak_score": 3.0}, {"peak_score": 4.5}]},
                           {"case_id": "b", "regions": []}]}
    assert largest_region_peaks(records) == {"a": 4.5, "b": 0.0}


def test_settings_and_the_command_line():
    assert settings({}) is None
    assert settings({"outlier_removal": {"criterion": "latent"}}) == {"criterion": "latent", "z": 3.5, "folds": 5}
    with pytest.raises(ValueError, match="criterion"):
        settings({"outlier_removal": {"criterion": "loss"}})
    args = build_parser().parse_args(["train", "--out", "b", "--outlier-removal"])
    assert args.outlier_removal == "latent"
    assert build_parser().parse_args(["train", "--out", "b", "--outlier-removal", "loss"]).outlier_removal == "loss"
    assert STAGES.index("preprocess") < STAGES.index("outliers") < STAGES.index("encoder")


def test_removed_scans_leave_the_training_cache_and_every_later_stage(tmp_path):
    """After the outliers stage decided, the encoder and scorer stages (load_cache) and the calibration stage (cases)
    see only the kept scans; the stage itself still sees every scan."""
    raw = json.loads((REPO / "configs" / "default_t1.json").read_text())
    run = TrainingRun(TrainConfig.from_dict(raw), tmp_path, log=lambda s: None)
    (tmp_path / "cache").mkdir()
    ids = ["IXI002", "lesion", "IXI012"]
    images = np.arange(3)[:, None].astype(np.float16) * np.ones((3, 4))
    np.savez_compressed(tmp_path / "cache" / "train.npz", images=images, masks=np.ones((3, 4), bool), ids=np.asarray(ids))
    assert run.load_cache("train")[2] == ids and removed_ids(tmp_path) == set()
    (tmp_path / OUTLIERS_FILE).write_text(json.dumps({"removed": ["lesion"]}))
    images, masks, kept = run.load_cache("train")
    assert kept == ["IXI002", "IXI012"] and images[:, 0].tolist() == [0.0, 2.0] and masks.shape == (2, 4)
    run.split_file = tmp_path / "split.json"
    run.split_file.write_text(json.dumps({"train": ids, "val": [], "test": []}))
    assert [c.case_id for c in run.cases("train")] == ["IXI002", "IXI012"]
    assert [c.case_id for c in run.cases("train", every=True)] == ids
