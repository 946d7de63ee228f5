"""Joint-rank p-values: the guarantee on exchangeable scans, the scan beyond every healthy scan, the mass arrays."""

from __future__ import annotations

import numpy as np
import pytest

from LatentAnomalyLib.score.conformal import p_values
from LatentAnomalyLib.score.joint_rank import joint_rank_p, joint_ranks, largest_region_masses


@pytest.mark.parametrize("seed", range(5))
def test_among_exchangeable_scans_at_most_alpha_of_them_get_p_at_most_alpha(seed):
    # Full conformal: each of the m scans tested against the other m - 1 sees the same bag, so the number of
    # scans with p <= alpha can never exceed alpha * m, whatever the data (here with ties and correlated columns).
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(60, 1))
    scans = np.round(np.hstack([base + rng.normal(size=(60, 1)), rng.gamma(1.0, size=(60, 1)), base**2]), 1)
    for alpha in (0.05, 0.1, 0.2):
        ps = [joint_rank_p(np.delete(scans, i, 0), scans[i]) for i in range(len(scans))]
        assert sum(p <= alpha for p in ps) <= alpha * len(scans)


def test_the_guarantee_holds_over_many_draws():
    rng = np.random.default_rng(7)
    flags = []
    for _ in range(400):
        draw = rng.normal(size=(40, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
        flags.append(joint_rank_p(draw[:-1], draw[-1]) <= 0.05)
    assert np.mean(flags) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400)


@pytest.mark.parametrize("column", [0, 1, 2])
def test_a_scan_beyond_every_calibration_scan_on_any_one_statistic_is_flagged(column):
    rng = np.random.default_rng(3)
    cal = rng.normal(size=(118, 3))
    new = np.zeros(3)  # ordinary on every statistic ...
    new[column] = cal[:, column].max() + 0.01  # ... but above all 118 healthy scans on one
    p = joint_rank_p(cal, new)
    assert p <= 3 / 119 < 0.05
    assert joint_rank_p(cal, np.zeros(3)) > 0.2  # the same scan without it is not


def test_one_statistic_gives_the_ordinary_conformal_p_value():
    rng = np.random.default_rng(4)
    cal = rng.normal(size=(50, 1))
    for value in (-3.0, 0.0, 0.5, 4.0):
        assert joint_rank_p(cal, [value]) == pytest.approx(p_values(value, cal[:, 0])[0])


def test_ranks_count_ties_and_take_the_largest_column():
    z = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 0.0]])
    assert joint_ranks(z).tolist() == [3, 3, 3]  # tied 5.0s rank 3 of 3; the 3.0 ranks 3 on its column
    assert joint_ranks(np.array([[1.0, 1.0], [2.0, 2.0]])).tolist() == [1, 2]


def test_largest_region_masses_per_scan():
    masses = largest_region_masses(
        scan_index=np.array([0, 0, 2]),
        volume_ml=np.array([2.0, 10.0, 4.0]),
        mean_score=np.array([5.0, 3.5, 2.0]),
        n_scans=4,
        threshold=3.0,
    )
    assert masses.tolist() == [5.0, 0.0, 0.0, 0.0]  # 10 x 0.5 beats 2 x 2; a mean below the threshold counts 0


def test_mismatched_or_non_finite_statistics_are_refused():
    with pytest.raises(ValueError, match="different statistics"):
        joint_rank_p(np.zeros((5, 3)), [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        joint_rank_p(np.zeros((5, 2)), [1.0, np.nan])
