"""The subject score: the mean of the top 1% of brain scores, with round-to-nearest voxel counts."""

from __future__ import annotations

import numpy as np

from LatentAnomalyLib.score.subject import subject_score


def test_mean_of_the_top_fraction_inside_the_mask():
    scores = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    mask = np.ones(scores.shape, dtype=bool)
    assert subject_score(scores, mask) == np.mean(np.arange(990, 1000))  # 1% of 1000 voxels: the top 10
    mask[-1] = False  # the 100 highest voxels leave the brain
    assert subject_score(scores, mask) == np.mean(np.arange(891, 900))  # 1% of 900: the top 9 of what is left


def test_voxel_count_is_rounded_to_nearest_not_truncated_and_at_least_one():
    scores = np.arange(250, dtype=np.float64)
    mask = np.ones(250, dtype=bool)
    assert subject_score(scores, mask) == np.mean([248.0, 249.0])  # 2.5 -> 2: Python's round, half to even
    assert subject_score(scores[:170], mask[:170]) == np.mean([168.0, 169.0])  # 1.7 -> 2 (truncation would give 1)
    assert subject_score(scores[:30], mask[:30]) == 29.0  # 0.3 -> at least one voxel
    assert subject_score(scores, np.zeros(250, dtype=bool)) == 0.0
