"""`python -m LatentAnomalyLib.cli.calibrate crossfit|bundle`: the options reach training.crossfit.run and
training.conformal_bundle.write unchanged."""

from __future__ import annotations

import json
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


def test_bundle_step_writes_from_the_config_and_records(monkeypatch, tmp_path, capsys):
    from LatentAnomalyLib.training import conformal_bundle

    conformal = {"folds": 5, "seed": 1, "subject_statistic": "normalised", "region_statistic": "peak"}
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"version": "2.0.0", "description": "d", "conformal": conformal}))
    (tmp_path / "work").mkdir()
    records = {"scorer": "knn", "records": [{"case_id": "IXI1"}, {"case_id": "IXI2"}, {"case_id": "IXI3"}]}
    (tmp_path / "work" / "records.json").write_text(json.dumps(records))
    calls = []
    monkeypatch.setattr(conformal_bundle, "write", lambda *args: calls.append(args) or Path(args[4]))
    ages = tmp_path / "participants.csv"
    ages.write_text("MRID,Age,Sex\nIXI1,30.5,F\nIXI2,,M\n")
    argv = ["bundle", "--config", str(config), "--work", str(tmp_path / "work"), "--out", "o", "--ages", str(ages)]
    assert calibrate.main(argv) == 0
    assert calls == [
        (Path("models/latent-anomaly-t1"), records, conformal, "2.0.0", Path("o"), "d", {"IXI1": 30.5})
    ]
    assert capsys.readouterr().out.splitlines() == [f"ages for 1 of 3 calibration scans ({ages})", "wrote bundle o"]
    calls.clear()
    argv_missing = [*argv[:-1], str(tmp_path / "absent.csv")]
    assert calibrate.main(argv_missing) == 2 and "no such file" in capsys.readouterr().err and not calls
    ages.write_text("MRID,Age\nIXI1,thirty\n")
    assert calibrate.main(argv) == 2 and not calls
    assert capsys.readouterr().err.strip() == f"error: {ages} row 2: Age 'thirty' is not a number"


def test_bad_options_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        calibrate.main(["crossfit", "--folds", "many"])
    assert stop.value.code == 2 and "invalid int value" in capsys.readouterr().err


def test_bundle_needs_out(capsys):
    with pytest.raises(SystemExit) as stop:
        calibrate.main(["bundle"])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err
