"""`python -m LatentAnomalyLib.cli.calibrate crossfit`: the options reach training.crossfit.run unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from LatentAnomalyLib.cli import calibrate


def test_crossfit_options_are_passed_to_the_library(monkeypatch):
    from LatentAnomalyLib.bundle.model import Model
    from LatentAnomalyLib.training import crossfit

    calls = []
    model = type("FakeModel", (), {"default_scorer": "gaussian4mm"})()
    monkeypatch.setattr(Model, "load", staticmethod(lambda path: calls.append(("load", path)) or model))
    monkeypatch.setattr(crossfit, "run", lambda *args: calls.append(args))
    assert calibrate.main(["crossfit", "--work", "w", "--folds", "3", "--seed", "7"]) == 0
    assert calls == [("load", None), (model, "gaussian4mm", Path("runs/scan_cache/latent-anomaly-t1-1.4.0"), Path("w"), 3, 7)]
    calls.clear()
    calibrate.main(["crossfit", "--model", "m", "--scorer", "ocsvm"])
    assert calls[0] == ("load", "m") and calls[1][1] == "ocsvm" and calls[1][4:] == (5, 20261123)


def test_bad_options_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        calibrate.main(["crossfit", "--folds", "many"])
    assert stop.value.code == 2 and "invalid int value" in capsys.readouterr().err
