"""The bundled model's default map (model 1.7.0): gaussian4mm's map plus half the atlas's, both as the bundle ships
them, on a real scan; and how the bundle says so (data only, no arrays of its own)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.latent_atlas_sum import IDENTITY_POSTPROCESS, LatentAtlasSumScorer

from ..conftest import MODEL


def test_default_heatmap_is_the_latent_heatmap_plus_half_the_atlas_heatmap(model, mslub_sample):
    assert model.default_scorer == "gaussian4mm_atlas"
    combined = model.scorers["gaussian4mm_atlas"]
    assert isinstance(combined, LatentAtlasSumScorer) and combined.atlas_weight == 0.5
    assert combined.mirror_average  # the latent part averages with the mirrored view, so detect encodes both
    results = Detector(model, DetectOptions(device="cpu")).detect_scorers(
        read_image(mslub_sample["T1"]), ["gaussian4mm", "atlas", "gaussian4mm_atlas"]
    )
    parts = results["gaussian4mm"].model_heatmap + np.float32(0.5) * results["atlas"].model_heatmap
    assert np.array_equal(results["gaussian4mm_atlas"].model_heatmap, parts)
    heat = {n: sitk.GetArrayFromImage(r.heatmap) for n, r in results.items()}
    assert not np.allclose(heat["gaussian4mm_atlas"], heat["gaussian4mm"])  # the atlas part changes the map
    summary = results["gaussian4mm_atlas"].summary
    assert summary["model"]["scorer"] == "gaussian4mm_atlas"
    assert summary["voxel_threshold"] == model.calibration["scorers"]["gaussian4mm_atlas"]["voxel_threshold"]
    deciding = model.decision_scorer("gaussian4mm_atlas") or "gaussian4mm_atlas"  # 1.10.0: another map decides
    assert summary["model"]["decision_scorer"] == model.decision_scorer("gaussian4mm_atlas")
    sets = model.bundle.arrays("calibration_sets.safetensors")  # the deciding scorer's own sets, not gaussian4mm's
    healthy, healthy_scores = sets[f"{deciding}.region_max"], sets[f"{deciding}.subject_scores"]
    p_peak = (1 + (healthy >= summary["subject_region_peak"]).sum()) / (len(healthy) + 1)
    p_map = (1 + (healthy_scores >= summary["subject_score"]).sum()) / (len(healthy) + 1)
    assert summary["subject_p_value"] == pytest.approx(min(1.0, 2 * min(p_map, p_peak)))  # the combined rule (1.9.0)


def test_the_combined_scorer_is_data_in_the_bundle():
    config = json.loads((MODEL / "config.json").read_text())
    assert config["scorers"]["gaussian4mm_atlas"] == {"meta": "scorers/gaussian4mm_atlas.json"}  # no arrays
    doc = json.loads((MODEL / "scorers" / "gaussian4mm_atlas.json").read_text())
    assert doc["scorer"] == "gaussian4mm_atlas"
    assert doc["params"] == {"atlas_weight": 0.5, "latent": "gaussian4mm", "atlas": "atlas"}
    assert doc["postprocess"] == IDENTITY_POSTPROCESS
    assert doc["calibration"]["conformal"]["n_scans"] == 118
