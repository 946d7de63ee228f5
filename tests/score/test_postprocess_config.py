"""Post-processing sections, typed (score/postprocess_config.py): unknown options refused in one line, a partial
section applied over a base, and a section read and written again is the same JSON (only the options set, in order)."""

from __future__ import annotations

import json

import pytest

from LatentAnomalyLib.errors import LatentAnomalyError
from LatentAnomalyLib.score.postprocess_config import OPTIONS, PostprocessConfig, PostprocessError, PostprocessOverrides
from tests.conftest import MODEL


@pytest.mark.parametrize(
    "data, words",
    [
        ({"median": 3}, "scorer 'knn' postprocess: unknown option(s) 'median' (known: median_size, gaussian_sigma"),
        ({"median_size": 3, "smooth": 1, "x": 0}, "unknown option(s) 'smooth', 'x'"),
        ({"median_size": True}, "median_size must be int, got True"),
        ({"erode_mask_vox": 1.5}, "erode_mask_vox must be int, got 1.5"),
        ({"gaussian_sigma_vox": "2"}, "gaussian_sigma_vox must be int or float, got '2'"),
        ({"scan_normalise": 1}, "scan_normalise must be bool, got 1"),
        ({"median_size": None}, "median_size must be int, got None"),
        ([["median_size", 3]], "scorer 'knn' postprocess must be a JSON object of options, got list"),
    ],
)
def test_unknown_options_and_wrong_types_are_refused_in_one_line(data, words):
    with pytest.raises(PostprocessError) as caught:
        PostprocessOverrides.from_dict(data, "scorer 'knn' postprocess")
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, LatentAnomalyError)  # the CLI reports it as one error line, exit code 2


def test_a_partial_section_sets_only_its_options():
    section = PostprocessOverrides.from_dict({"median_size": 3})
    base = PostprocessConfig(median_size=5, gaussian_sigma_vox=2.0, scan_normalise=True)
    assert section.apply(base) == PostprocessConfig(median_size=3, gaussian_sigma_vox=2.0, scan_normalise=True)
    assert section.apply() == PostprocessConfig(median_size=3)
    assert PostprocessOverrides().apply(base) == base and PostprocessOverrides.from_dict(None).is_empty
    assert (section.median_size, section.gaussian_sigma_vox, section.erode_mask_vox, section.scan_normalise) == (
        3, None, None, None,
    )


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"gaussian_sigma_vox": 2, "median_size": 3}',
        '{"scan_normalise": true, "erode_mask_vox": 1}',
        '{"median_size": 3, "gaussian_sigma_vox": 0.0, "erode_mask_vox": 0, "scan_normalise": false}',
    ],
)
def test_round_trip_writes_only_the_set_options_in_their_order(text):
    section = PostprocessOverrides.from_dict(json.loads(text))
    assert json.dumps(section.to_dict()) == text  # same keys, same order, 2 stays 2 (not 2.0)
    assert section.apply() == PostprocessConfig(**json.loads(text))


def test_merged_is_a_dict_update_and_equality_ignores_order():
    base = PostprocessOverrides.from_dict({"scan_normalise": True, "median_size": 5})
    own = PostprocessOverrides.from_dict({"gaussian_sigma_vox": 2.0, "median_size": 3})
    merged = base.merged(own)
    assert list(merged.to_dict().items()) == list({**base.to_dict(), **own.to_dict()}.items())
    assert merged.to_dict() == {"scan_normalise": True, "median_size": 3, "gaussian_sigma_vox": 2.0}
    assert merged == PostprocessOverrides(median_size=3, gaussian_sigma_vox=2.0, scan_normalise=True)
    assert list(PostprocessOverrides(scan_normalise=True, median_size=3).to_dict()) == ["median_size", "scan_normalise"]
    assert OPTIONS == ("median_size", "gaussian_sigma_vox", "erode_mask_vox", "scan_normalise")


def test_the_bundled_models_sections_read_back_unchanged():
    """Every scorer file of the bundled model: the same JSON after a round trip, the config detection builds from it."""
    config = json.loads((MODEL / "config.json").read_text())
    for name, files in config["scorers"].items():
        raw = json.loads((MODEL / files["meta"]).read_text())["postprocess"]
        section = PostprocessOverrides.from_dict(raw, f"scorer {name!r} postprocess")
        assert json.dumps(section.to_dict()) == json.dumps(raw), name
        assert section.apply() == PostprocessConfig(**raw), name
