"""Batch lists with an 'age' column: each case carries its age, a bad one is refused naming its row, and a record made
at another age is not reused on resume."""

from __future__ import annotations

import csv
import json

import pytest

from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.cohort.inputs import read_list
from LatentAnomalyLib.cohort.records import load_record, save_record
from LatentAnomalyLib.errors import InputError


def test_list_ages_are_read_per_row_and_empty_means_unknown(tmp_path):
    listing = tmp_path / "cohort.csv"
    listing.write_text("case_id,path,age\na,a.nii.gz,64.5\nb,b.nii.gz,\nc,c.nii.gz, 30 \n")
    assert [(c.case_id, c.age) for c in read_list(listing)] == [("a", 64.5), ("b", None), ("c", 30.0)]
    (tmp_path / "plain.csv").write_text("path\nx.nii.gz\n")
    assert read_list(tmp_path / "plain.csv")[0].age is None


@pytest.mark.parametrize("age", ["old", "-3", "131", "nan", "inf"])
def test_a_bad_age_is_refused_with_its_row(tmp_path, age):
    listing = tmp_path / "cohort.csv"
    listing.write_text(f"path,age\na.nii.gz,40\nb.nii.gz,{age}\n")
    with pytest.raises(InputError, match=r"cohort.csv row 3: age must be a number of years from 0 to 130"):
        read_list(listing)


def test_a_record_made_at_another_age_is_not_reused(tmp_path):
    row = {"case_id": "a", "path": "a.nii.gz", "age": 64.5, "settings": {"alpha": 0.05}, "status": "done"}
    save_record(tmp_path, row)
    assert load_record(tmp_path, "a", "a.nii.gz", {"alpha": 0.05}, 64.5) == row
    assert load_record(tmp_path, "a", "a.nii.gz", {"alpha": 0.05}, 30.0) is None
    assert load_record(tmp_path, "a", "a.nii.gz", {"alpha": 0.05}) is None  # the age was dropped from the list
    older = {k: v for k, v in row.items() if k != "age"} | {"case_id": "b", "path": "b.nii.gz"}  # before 1.8.0
    save_record(tmp_path, older)
    assert load_record(tmp_path, "b", "b.nii.gz", {"alpha": 0.05}) == older  # no age then, none now: reused


def test_batch_uses_each_rows_age(tmp_path, ixi_sample, mslub_sample):
    """The MS sample at age 30 gets the p-value of the under-40 band; the IXI sample without an age the marginal one,
    as ``detect`` gives them."""
    ms = mslub_sample["T1"]
    listing = tmp_path / "cohort.csv"
    listing.write_text(f"case_id,path,age\nms,{ms},30\nixi,{ixi_sample},\n")
    out = tmp_path / "out"
    assert main(["batch", "--list", str(listing), "--out", str(out), "--device", "cpu", "--progress", "none"]) == 0
    rows = {r["case_id"]: r for r in csv.DictReader((out / "scores.csv").open())}
    for case_id, scan, age in (("ms", ms, ["--age", "30"]), ("ixi", ixi_sample, [])):
        single = tmp_path / f"single-{case_id}"
        assert main(["detect", str(scan), "--out", str(single), "--device", "cpu", "--progress", "none", *age]) == 0
        summary = json.loads((single / "summary.json").read_text())
        assert float(rows[case_id]["p_value"]) == pytest.approx(summary["subject_p_value"], rel=1e-5)
    assert rows["ms"]["age"] == "30" and rows["ixi"]["age"] == ""
    marginal = tmp_path / "single-ms-marginal"
    assert main(["detect", str(ms), "--out", str(marginal), "--device", "cpu", "--progress", "none"]) == 0
    assert json.loads((marginal / "summary.json").read_text())["subject_p_value"] != float(rows["ms"]["p_value"])


def test_batch_refuses_an_age_column_the_scorer_cannot_use(tmp_path, ixi_sample, capsys):
    listing = tmp_path / "cohort.csv"
    listing.write_text(f"path,age\n{ixi_sample},50\n")
    out = tmp_path / "out"
    assert main(["batch", "--list", str(listing), "--out", str(out), "--scorer", "gaussian4mm", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "age column needs calibration ages" in err[0] and "(gaussian4mm)" in err[0]
    assert not out.exists()


def test_batch_says_when_an_age_band_cannot_flag_at_alpha(tmp_path, ixi_sample, capsys):
    listing = tmp_path / "cohort.csv"
    listing.write_text(f"path,age\n{ixi_sample},70\n")
    argv = ["batch", "--list", str(listing), "--out", str(tmp_path / "out"), "--alpha", "0.02", "--export", "none",
            "--device", "cpu", "--progress", "none"]
    assert main(argv) == 0
    assert "note: scans aged 60 or older: alpha 0.02 is below 2/35 = 0.0571" in capsys.readouterr().err
