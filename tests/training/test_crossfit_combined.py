"""Cross-fitting the combined default scorer: a fold's parts rebuild exactly the map the bundle's parts give."""

from __future__ import annotations

import numpy as np
import pytest

from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.atlas import AtlasScorer
from LatentAnomalyLib.training.crossfit import (
    bound_sum,
    fit_atlas,
    load_fold_scorer,
    load_scorer,
    save_atlas,
    save_scorer,
)


@pytest.fixture(scope="module")
def encoded(model, mslub_sample):
    detector = Detector(model, DetectOptions(device="cpu"))
    return detector.encode(detector.preprocess(read_image(mslub_sample["T1"]), {}), False, True)


def test_bound_sum_with_the_bundles_parts_is_the_bundles_combined_scorer(model, encoded):
    parts = {"gaussian4mm": model.scorers["gaussian4mm"], "atlas": model.scorers["atlas"]}
    fold = bound_sum(model, "gaussian4mm_atlas", parts)
    assert np.array_equal(fold.score(encoded), model.scorers["gaussian4mm_atlas"].score(encoded))


def test_fold_atlas_is_refitted_with_the_bundles_settings(model, encoded):
    darker = type(encoded)(encoded.image * 0.5, encoded.mask)
    atlas = fit_atlas(model, "atlas", [encoded, darker])
    assert isinstance(atlas, AtlasScorer) and atlas.state()[1] == model.scorers["atlas"].state()[1]
    assert not np.array_equal(atlas.arrays["mean"], model.scorers["atlas"].arrays["mean"])  # refitted on the fold
    fold = bound_sum(model, "gaussian4mm_atlas", {"gaussian4mm": model.scorers["gaussian4mm"], "atlas": atlas})
    assert not np.array_equal(fold.score(encoded), model.scorers["gaussian4mm_atlas"].score(encoded))


def test_cached_fold_scorer_of_another_kind_is_refused(model, tmp_path, monkeypatch):
    """Fold folders copied from another run must hold the combined scorer's latent part (gaussian4mm)."""
    from LatentAnomalyLib.training import crossfit

    save_scorer(model.scorers["knn"], tmp_path / "fold0")
    assert load_scorer(tmp_path / "fold0").name == "knn"
    monkeypatch.setattr(crossfit, "load_ixi", lambda detector, cache, part: [])
    with pytest.raises(ValueError, match="holds a knn fold scorer, not gaussian4mm"):
        crossfit.run(model, "gaussian4mm_atlas", tmp_path / "cache", tmp_path, 1, 0)


def test_a_fold_folder_rebuilds_the_folds_combined_scorer(model, encoded, tmp_path):
    """What cross-fitting keeps per fold (latent scorer + refitted atlas) gives back the map it scored with."""
    darker = type(encoded)(encoded.image * 0.5, encoded.mask)
    atlas = fit_atlas(model, "atlas", [encoded, darker])
    save_scorer(model.scorers["gaussian4mm"], tmp_path)
    with pytest.raises(ValueError, match="no fold atlas"):
        load_fold_scorer(model, "gaussian4mm_atlas", tmp_path)
    save_atlas(atlas, tmp_path)
    fold = bound_sum(model, "gaussian4mm_atlas", {"gaussian4mm": model.scorers["gaussian4mm"], "atlas": atlas})
    again = load_fold_scorer(model, "gaussian4mm_atlas", tmp_path)
    assert np.array_equal(again.score(encoded), fold.score(encoded))
    assert load_fold_scorer(model, "gaussian4mm", tmp_path).name == "gaussian4mm"  # a latent scorer: itself
