"""Case ids: from a CSV they never name a path outside `--out` (refused in one line, nothing deleted or written); from
file names they are plain, distinct and stable, non-ASCII names included; duplicates are refused naming the cause."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import pytest

from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.cohort.inputs import case_id_for, discover
from LatentAnomalyLib.cohort.paths import case_folder, check_case_id, record_path, staging_folder
from LatentAnomalyLib.errors import InputError

HOSTILE_IDS = {
    "parent_of_parent": "../../victim",
    "parent": "../victim",
    "absolute": "/ABSOLUTE/victim",  # replaced by a real absolute path in the test
    "separator": "sub/victim",
    "backslash": "..\\victim",
    "dot_dot": "..",
    "hidden": ".records",
    "table_name": "scores.csv",
    "nul_and_space": "a b\x00",
}


def _tree(path: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(HOSTILE_IDS))
def test_hostile_case_id_is_refused_before_anything_is_written(tmp_path, name, capfd, ixi_sample):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    case_id = HOSTILE_IDS[name].replace("/ABSOLUTE/victim", str(victim))
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    listing = work / "cases.csv"
    listing.write_text(f'case_id,path\n"{case_id}",{ixi_sample}\n')
    before = _tree(tmp_path)
    out = work / "out"
    code = main(["batch", str(listing), "--out", str(out), "--export", "all", "--device", "cpu", "--progress", "none"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "case_id" in err[0] and "row 2" in err[0], err
    assert not out.exists()
    assert _tree(tmp_path) == before  # nothing deleted, nothing written anywhere
    assert (victim / "keep.txt").read_text() == "precious"


def test_every_writer_path_stays_inside_out(tmp_path):
    out = tmp_path / "out"
    assert case_folder(out, "case-1.a") == out / "case-1.a"
    assert staging_folder(out, "case-1.a") == out / ".partial" / "case-1.a"
    assert record_path(out, "case-1.a") == out / ".records" / "case-1.a.json"
    for bad in ("../x", "/tmp/x", "a/b", "..", "", ".x", "x" * 129):
        for writer in (case_folder, staging_folder, record_path):
            with pytest.raises(InputError, match="case_id"):
                writer(out, bad)


def test_symlinked_staging_folder_outside_out_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / ".partial").symlink_to(elsewhere)
    with pytest.raises(InputError, match="outside the output folder"):
        staging_folder(out, "case")


def test_ids_made_from_file_names_are_always_plain(tmp_path):
    for raw in ("../../x.nii.gz", "/a/b/.hidden.nii.gz", "name with spaces.nrrd", "dicom/series/", "é.mha"):
        assert check_case_id(case_id_for(raw)) == case_id_for(raw)
    listing = tmp_path / "list.txt"
    listing.write_text("../a.nii.gz\n")
    cases, _ = discover([str(listing)])
    assert cases[0].case_id == "a"


def test_non_ascii_names_keep_distinct_stable_ids(tmp_path):
    """A folder of Chinese file names gave every scan the id '_' and was refused as duplicates."""
    folder = tmp_path / "扫描"
    folder.mkdir()
    names = ["脑部扫描.nii.gz", "脑部扫描二.nii.gz", "患者_01.nii.gz", "Müller.nrrd", "Muller.nrrd", "émile.mha"]
    for name in names:
        (folder / name).write_bytes(b"")
    cases, _ = discover([str(folder)])
    ids = {Path(c.path).name: c.case_id for c in cases}
    assert len(set(ids.values())) == len(names)
    assert all(check_case_id(i) == i for i in ids.values())
    assert ids["Muller.nrrd"] == "Muller"  # ASCII names keep the id they always had
    assert ids["Müller.nrrd"].startswith("Muller-") and ids["émile.mha"].startswith("emile-")  # accents folded
    assert ids["患者_01.nii.gz"].startswith("01-") and ids["脑部扫描.nii.gz"].startswith("case-")
    again, _ = discover([str(folder)])  # stable across runs
    assert [c.case_id for c in again] == [c.case_id for c in cases]
    decomposed = unicodedata.normalize("NFD", "Müller.nrrd")  # as macOS stores it: the same name, the same id
    assert case_id_for(decomposed) == ids["Müller.nrrd"]


def test_duplicate_ids_name_the_scans_and_the_cause(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "扫描.nii.gz").write_bytes(b"")
    with_column = tmp_path / "with_ids.csv"
    with_column.write_text("case_id,path\nx,a/扫描.nii.gz\nx,b/扫描.nii.gz\n")
    with pytest.raises(InputError) as given:
        discover([str(with_column)])
    assert "'x' is the id of 2 scans" in str(given.value) and "case_id column of" in str(given.value)
    assert "give a CSV with a case_id column" not in str(given.value)  # it has one
    empty_cells = tmp_path / "empty_ids.csv"
    empty_cells.write_text("case_id,path\n,a/扫描.nii.gz\n,b/扫描.nii.gz\n")
    with pytest.raises(InputError, match=r"gives them no case_id .* give each a distinct case_id there"):
        discover([str(empty_cells)])
    with pytest.raises(InputError, match=r"not unique: .*come from the file names.*rename the files") as names:
        discover([str(tmp_path / "a"), str(tmp_path / "b")])
    assert "a/扫描.nii.gz" in str(names.value) and "b/扫描.nii.gz" in str(names.value)
