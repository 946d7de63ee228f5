"""`latent-anomaly info` on the shipped bundle: the default scorer's conformal calibration sets and the score
threshold equivalent to alpha 0.05 replace the 1.4.0 subject threshold; scorers without sets keep their line."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from LatentAnomalyLib.bundle.contents import read
from LatentAnomalyLib.bundle.format import Bundle, default_model_path
from LatentAnomalyLib.bundle.info import describe
from LatentAnomalyLib.bundle.migrate import calibration_view
from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.score.conformal import load_sets


def _calibration() -> tuple[Bundle, dict]:
    """The bundle and its per-scorer calibration, ``{"scorers": {name: ...}}``, as the library reads it."""
    bundle = Bundle.load(default_model_path())
    return bundle, calibration_view(read(bundle).scorers)


def test_default_scorer_states_its_calibration_sets_and_the_alpha_005_threshold():
    info = describe()
    default = info["default_scorer"]
    bundle, calibration = _calibration()
    sets = load_sets(SimpleNamespace(calibration=calibration, bundle=bundle), default)
    assert sets is not None  # models from 1.5.0 ship sets for their default scorer
    at_005 = sets.subject(0.0, 0.05)  # what detect writes as summary.json's thresholds
    t = info["thresholds"][default]
    assert t["subject"] == at_005["subject_threshold"] != calibration["scorers"][default]["subject"]["threshold"]
    assert t["subject_without_sets"] == calibration["scorers"][default]["subject"]["threshold"]
    c = t["conformal"]
    assert (c["n_scans"], c["region_statistic"], c["default_alpha"]) == (sets.n, sets.region_statistic, 0.05)
    assert c["region_statistic_threshold"] == sets.describe(0.05)["region_statistic_threshold"]
    lines = info["text"].splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith(f"    {default}:"))
    assert f"conformal calibration sets: {sets.n} healthy scans, default alpha 0.05" in lines[head]
    if sets.subject_statistic == "region_peak":  # model 1.6.0: the largest region peak alone decides
        assert t["subject"] is None
        peak = at_005["subject_region_peak_threshold"]
        assert f"flagged when the largest region peak is above {peak:.3f} (p <= alpha)" in lines[head + 2]
        assert "label map: every region of a flagged scan" in lines[head + 2]
    else:
        assert f"flagged when the subject score is above {at_005['subject_threshold']:.3f}" in lines[head + 2]
    stale = f"subject threshold {calibration['scorers'][default]['subject']['threshold']:.3f}"
    assert stale not in info["text"]


def test_scorers_without_sets_keep_their_threshold_line(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    _, calibration = _calibration()
    without = [n for n in calibration["scorers"] if not calibration["scorers"][n].get("conformal")]
    assert without  # the other latent scorers have no calibration sets in 1.5.0
    for name in without:
        c = calibration["scorers"][name]
        line = f"    {name}: voxel threshold {c['voxel_threshold']:.3f} ({c['voxel_threshold_rule']}); subject threshold "
        assert f"{line}{c['subject']['threshold']:.3f}" in text.splitlines()
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert all("conformal" not in info["thresholds"][n] for n in without)


def test_info_does_not_import_torch():
    code = "import sys; from LatentAnomalyLib.bundle.info import describe; describe(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def test_slicer_module_model_text_shows_the_conformal_threshold():
    from tests.slicer_gui import results

    info = describe()
    default = info["default_scorer"]
    t = info["thresholds"][default]
    line = next(x for x in results.format_model_info(info).splitlines() if x.startswith(f"  {default}:"))
    c = t["conformal"]
    assert c["subject_threshold"] is not None and "subject_region_peak_threshold" in c  # 1.9.0: combined
    decided_by = (
        f"flagged when the subject score is above {c['subject_threshold']:.3f} or the largest region peak is above "
        f"{c['subject_region_peak_threshold']:.3f}"
    )
    assert line.endswith(f"conformal calibration ({c['n_scans']} healthy scans): {decided_by} at alpha 0.05")
