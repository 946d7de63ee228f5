"""The bad-input corpus, third round (issue 27): one bad voxel, a sheared or double header, link loops, inverted contrast.

Same contract as ``test_bad_inputs``: exit 2, one `error:` line naming the reason (never "unexpected failure"),
no output folder and nothing beside it, the input byte-identical. And the other side of the intensity rule: a few
spike voxels in a normal scan are set aside with a warning and leave the result where it was without them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from tests.io.bad_files_hostile import HOSTILE_CASES, IXI, sample_array, with_spikes
from tests.io.test_bad_inputs import _assert_one_error, _fingerprint, _run


@pytest.mark.parametrize("name", sorted(HOSTILE_CASES))
def test_hostile_input_is_refused_cleanly(tmp_path, name, capfd):
    make, words = HOSTILE_CASES[name]
    work = tmp_path / "in"
    work.mkdir()
    source = make(work)
    before = _fingerprint(source)
    out = tmp_path / "results" / "out"
    code, err = _run(["detect", str(source), "--out", str(out), "--device", "cpu", "--progress", "none"], capfd)
    _assert_one_error(code, err, words)
    assert code == 2 and "unexpected" not in err[0], err
    assert not (tmp_path / "results").exists(), "nothing may be left beside or inside --out"
    assert _fingerprint(source) == before


def test_link_loop_in_a_real_process_is_one_line(tmp_path):
    source = HOSTILE_CASES["symlink_loop"][0](tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "LatentAnomalyLib.cli", "detect", str(source), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "symbolic link loop" in lines[0], lines
    assert "unexpected" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("target", ["loop", "broken"])
def test_out_that_is_a_link_loop_or_broken_link(tmp_path, target, capfd):
    out = tmp_path / "out"
    out.symlink_to(out if target == "loop" else tmp_path / "gone" / "out")
    code, err = _run(["detect", str(IXI), "--out", str(out)], capfd)
    _assert_one_error(code, err, "symbolic link")
    assert code == 2 and out.is_symlink() and not (tmp_path / "gone").exists()


def test_batch_records_unfollowable_paths_per_case(tmp_path, capfd):
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("symlink_loop", "broken_symlink"):
        HOSTILE_CASES[name][0](folder)
    code, err = _run(["batch", str(folder), "--out", str(tmp_path / "batch"), "--device", "cpu", "--progress", "none"], capfd)
    assert code == 3
    failed = [line for line in err if line.startswith("failed: ")]
    assert len(failed) == 3 and all("symbolic link" in line for line in failed), err  # a.nii.gz, b.nii.gz, scan.nii.gz
    assert not any("unexpected" in line for line in err)


@pytest.mark.parametrize("value", [1e30, "100x"])
def test_one_spike_voxel_leaves_the_result_where_it_was(tmp_path, detect_run, value):
    """One voxel at 1e30 gave a 5248 mL brain and p 0.067; one at 100x the maximum moved p from 0.639 to 0.958."""
    clean = json.loads((detect_run(IXI).folder / "summary.json").read_text())
    spike = float(sample_array()[0].max()) * 100 if value == "100x" else float(value)
    source = with_spikes(tmp_path, "spike.nii.gz", spike, 1)
    before = _fingerprint(source)
    run = detect_run(source)
    assert run.code == 0
    summary = json.loads((run.folder / "summary.json").read_text())
    assert summary["subject_p_value"] == pytest.approx(clean["subject_p_value"])
    assert summary["subject_flagged"] == clean["subject_flagged"]
    assert summary["brain_volume_ml"] == pytest.approx(clean["brain_volume_ml"], abs=0.1)
    assert summary["subject_score"] == pytest.approx(clean["subject_score"], rel=1e-3)
    assert any("1 voxel(s) had intensities far outside" in w for w in summary["warnings"]), summary["warnings"]
    assert _fingerprint(source) == before
    heatmap, scan = (sitk.ReadImage(str(p)) for p in (run.folder / "heatmap.nii.gz", source))  # the input's grid
    assert heatmap.GetSize() == scan.GetSize()
    assert np.allclose(heatmap.GetOrigin(), scan.GetOrigin()) and np.allclose(heatmap.GetDirection(), scan.GetDirection())


@pytest.mark.parametrize("command", ["info", "detect"])
def test_model_path_that_is_a_link_loop(tmp_path, command, capfd):
    loop = tmp_path / "bundle"
    loop.symlink_to(loop)
    argv = ["info", "--model", str(loop)] if command == "info" else ["detect", str(IXI), "--out", str(tmp_path / "out"), "--model", str(loop)]
    code, err = _run(argv, capfd)
    _assert_one_error(code, err, "symbolic link loop")
    assert code == 2 and not (tmp_path / "out").exists()
