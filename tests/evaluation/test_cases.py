"""One Case type: batch inputs, evaluation case lists and the research datasets all describe cases alike."""

from __future__ import annotations

from pathlib import Path

from LatentAnomalyLib.case import Case
from LatentAnomalyLib.cohort.inputs import discover
from LatentAnomalyLib.evaluation.cases import brats_folder_cases, read_cases_csv
from LatentAnomalyLib.evaluation.datasets import cohort_cases


def test_batch_cases_keep_the_path_as_given(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"x")
    listing = tmp_path / "list.csv"
    listing.write_text("case_id,path\nlisted,a.nii.gz\n")
    cases, _ = discover([str(tmp_path / "a.nii.gz"), "missing/scan.nrrd"], str(listing))
    assert [type(c) for c in cases] == [Case] * 3
    assert [c.path for c in cases] == [str(tmp_path / "a.nii.gz"), "missing/scan.nrrd", str(tmp_path / "a.nii.gz")]
    assert cases[1].images == {"t1": "missing/scan.nrrd"} and cases[1].label is None and not cases[1].healthy
    assert [c.case_id for c in cases] == ["a", "scan", "listed"] and cases[2].source == str(listing)


def test_evaluation_csv_and_brats_folder_give_the_same_type(tmp_path):
    for name in ("t1", "flair"):
        (tmp_path / name).mkdir()
    (tmp_path / "cases.csv").write_text("case_id,t1,flair,label,healthy\nc1,t1/x.nii.gz,flair/x.nii.gz,seg.nii.gz,\nc2,t1/y.nii.gz,,,yes\n")
    c1, c2 = read_cases_csv(tmp_path / "cases.csv")
    assert c1 == Case("c1", {"t1": tmp_path / "t1/x.nii.gz", "flair": tmp_path / "flair/x.nii.gz"}, tmp_path / "seg.nii.gz",
                      None, False, str(tmp_path / "cases.csv"))
    assert c2.images == {"t1": tmp_path / "t1/y.nii.gz"} and c2.healthy and c2.label is None
    case_dir = tmp_path / "brats" / "B1"
    case_dir.mkdir(parents=True)
    for seq in ("t1", "seg"):
        (case_dir / f"B1_{seq}.nii.gz").write_bytes(b"x")
    (brats,) = brats_folder_cases(tmp_path / "brats")
    assert brats == Case("B1", {"t1": case_dir / "B1_t1.nii.gz"}, case_dir / "B1_seg.nii.gz", source=str(tmp_path / "brats"))


def test_training_cohort_cases_are_healthy_cases(tmp_path):
    for name in ("s2.nii.gz", "s1.nrrd", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    cases = cohort_cases(tmp_path)
    assert [(c.case_id, c.images, c.healthy, c.source) for c in cases] == [
        ("s1", {"t1": Path(tmp_path / "s1.nrrd")}, True, "cohort"),
        ("s2", {"t1": Path(tmp_path / "s2.nii.gz")}, True, "cohort"),
    ]


def test_brats_half_keeps_the_split_files_half_in_folder_order(tmp_path):
    import json

    from LatentAnomalyLib.evaluation.datasets import brats_half

    for name in ("Brats18_C_1", "Brats18_A_1", "Brats18_B_1"):
        (tmp_path / "brats2018" / name).mkdir(parents=True)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"validation": ["Brats18_B_1"], "report": ["Brats18_C_1", "Brats18_A_1"]}))
    assert [c.case_id for c in brats_half("report", tmp_path, split)] == ["Brats18_A_1", "Brats18_C_1"]
    assert [c.case_id for c in brats_half("validation", tmp_path, split)] == ["Brats18_B_1"]
