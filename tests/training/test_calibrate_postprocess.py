"""The post-processing a training run calibrates with (training/calibrate.py): the configuration's common section
updated by a scorer's own (no search), or by each search candidate; what reaches metrics.json and the scorer file."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np

from LatentAnomalyLib.score.base import EncodedScan
from LatentAnomalyLib.score.postprocess_config import PostprocessConfig, PostprocessOverrides
from LatentAnomalyLib.training.calibrate import SyntheticSet, calibrate_scorer, choose_postprocess
from LatentAnomalyLib.training.config import CalibrationConfig

BASE = PostprocessOverrides.from_dict({"scan_normalise": True})


class ImageScorer:
    """Scores a scan by its own image: the painted lesion is brighter than the noise."""

    def score(self, scan: EncodedScan) -> np.ndarray:
        return scan.image


def _synthetic(n: int = 3, seed: int = 0) -> SyntheticSet:
    rng = np.random.default_rng(seed)
    grid = np.indices((14, 14, 14)) - 6.5
    mask = (grid**2).sum(axis=0) < 36
    scans, labels = [], []
    for i in range(n):
        label = np.zeros(mask.shape, bool)
        label[4 + i : 8 + i, 5:9, 5:9] = True
        image = (rng.normal(size=mask.shape) + 2.0 * label).astype(np.float32)
        scans.append(EncodedScan(image, mask))
        labels.append(label & mask)
    return SyntheticSet(scans, labels, ["cube"] * n)


def test_a_scorers_own_section_skips_the_search_and_updates_the_common_one():
    own = PostprocessOverrides.from_dict({"median_size": 3, "gaussian_sigma_vox": 2.0})
    chosen, search = choose_postprocess(None, None, own, BASE)  # no scorer, no scans: nothing is searched
    assert search == []
    assert json.dumps(chosen.to_dict()) == '{"scan_normalise": true, "median_size": 3, "gaussian_sigma_vox": 2.0}'


def test_the_search_tries_the_common_section_with_each_candidate_and_keeps_the_first_best():
    synthetic = _synthetic()
    chosen, search = choose_postprocess(ImageScorer(), synthetic, PostprocessOverrides(), BASE)
    assert [r["options"] for r in search] == [
        {"scan_normalise": True},
        {"scan_normalise": True, "median_size": 3},
        {"scan_normalise": True, "erode_mask_vox": 1},
        {"scan_normalise": True, "median_size": 3, "erode_mask_vox": 1},
    ]
    assert [list(r["options"]) for r in search][1] == ["scan_normalise", "median_size"]  # metrics.json's key order
    best = max(search, key=lambda r: r["auprc"] or 0.0)
    assert chosen.to_dict() == best["options"] and list(chosen.to_dict()) == list(best["options"])
    assert len({r["auprc"] for r in search}) > 1  # the candidates really differ on these scans


def test_calibration_stores_the_whole_post_processing_it_used():
    scans = _synthetic(seed=1).scans
    post = PostprocessOverrides.from_dict({"scan_normalise": True, "median_size": 3})
    entry = calibrate_scorer(ImageScorer(), scans, post, CalibrationConfig())
    assert json.dumps(entry["postprocess"]) == json.dumps(asdict(PostprocessConfig(median_size=3, scan_normalise=True)))
    assert list(entry["postprocess"]) == ["median_size", "gaussian_sigma_vox", "erode_mask_vox", "scan_normalise"]
    plain = calibrate_scorer(ImageScorer(), scans, PostprocessOverrides(), CalibrationConfig())
    assert plain["voxel_threshold"] != entry["voxel_threshold"]  # the section was applied before thresholding
