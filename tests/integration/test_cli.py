"""The `latent-anomaly` command end to end on committed scans, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import SimpleITK as sitk

from LatentAnomalyLib.bundle.format import default_model_path
from LatentAnomalyLib.cli.main import main


def test_detect_writes_three_files_in_input_geometry(ixi_sample, detect_run):
    run = detect_run(ixi_sample)  # `detect IXI --device cpu --progress none`, shared by the session
    out = run.folder
    assert run.code == 0
    assert sorted(p.name for p in out.iterdir()) == ["heatmap.nii.gz", "labelmap.nii.gz", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "model",
        "subject_score",
        "voxel_threshold",
        "flagged_volume_ml",
        "n_components",
        "components",
        "timings_s",
    ):
        assert key in summary
    assert summary["model"]["name"] == "latent-anomaly-t1"
    assert {"preprocess", "encode", "score", "map_to_scan", "write", "total"} <= set(summary["timings_s"])
    source, heat = sitk.ReadImage(str(ixi_sample)), sitk.ReadImage(str(out / "heatmap.nii.gz"))
    assert heat.GetSize() == source.GetSize()
    assert np.allclose(heat.GetOrigin(), source.GetOrigin(), atol=1e-4)
    assert np.allclose(heat.GetDirection(), source.GetDirection(), atol=1e-6)
    assert "outputs in" in run.stdout


def test_progress_lines_are_parseable(tmp_path, ixi_sample, capsys):
    from LatentAnomalyLib.progress import parse_line

    main(
        ["detect", str(ixi_sample), "--out", str(tmp_path), "--device", "cpu", "--progress", "lines", "--scorer", "lof"]
    )
    parsed = [parse_line(line) for line in capsys.readouterr().out.splitlines()]
    stages = [p[1] for p in parsed if p]
    assert stages[0] == "read" and stages[-1] == "done"
    assert [p[0] for p in parsed if p] == sorted(p[0] for p in parsed if p)


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.nii.gz").write_bytes(b"\x00" * 100)
    cases = [
        ["detect", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "o")],
        ["detect", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")],
        ["detect", str(tmp_path / "broken.nii.gz"), "--out", str(tmp_path / "o")],
        ["info", "--model", str(tmp_path)],
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_no_traceback_from_a_real_process(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "LatentAnomalyLib.cli", "detect", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1


def test_tampered_model_is_refused(tmp_path, ixi_sample, capsys):
    import shutil

    from tests.conftest import MODEL

    copy = tmp_path / "model"
    shutil.copytree(MODEL, copy)
    scorer = copy / "scorers" / "gaussian4mm.json"  # the default scorer's file: its thresholds among the rest
    config = json.loads(scorer.read_text())
    config["calibration"]["voxel_fpr"] = 0.5
    scorer.write_text(json.dumps(config))
    assert main(["detect", str(ixi_sample), "--out", str(tmp_path / "o"), "--model", str(copy)]) == 2
    assert "checksum mismatch for scorers/gaussian4mm.json" in capsys.readouterr().err


def test_info_describes_the_bundle(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["checksums"] == "verified"
    assert {"ocsvm", "lof", "gaussian4mm", "residual", "atlas"} <= set(info["scorers"])
    assert info["size_mb"] < 56  # 1.10.0: 54.8 MB with the asymmetry statistics


def test_evaluate_writes_tables_and_a_self_contained_report(tmp_path, mslub_sample, capsys):
    cases = tmp_path / "cases.csv"
    cases.write_text(
        f"case_id,t1,flair,label\nmslub07,{mslub_sample['T1']},{mslub_sample['FLAIR']},{mslub_sample['lesions']}\n"
    )
    out = tmp_path / "report"
    assert (
        main(
            [
                "evaluate",
                "--cases",
                str(cases),
                "--out",
                str(out),
                "--methods",
                "model,intensity:flair:high",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    by_method = {s["method"]: s for s in metrics["summaries"]}
    default = json.loads((default_model_path() / "config.json").read_text())["default_scorer"]
    assert set(by_method) == {f"model:{default}", "intensity:flair:high"}
    # MS lesions are bright on FLAIR: the FLAIR baseline must rank them well.
    assert by_method["intensity:flair:high"]["auroc"] > 0.9
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert "mslub07" in (out / "metrics.csv").read_text()


def test_every_user_error_derives_from_one_base_and_ends_as_one_line(monkeypatch, capsys):
    from LatentAnomalyLib.bundle.format import BundleError
    from LatentAnomalyLib.cli import main as cli_main
    from LatentAnomalyLib.cli.options import UsageError
    from LatentAnomalyLib.errors import InputError, LatentAnomalyError
    from LatentAnomalyLib.preprocess.normalize import NormalisationError

    for kind in (InputError, UsageError, NormalisationError, BundleError):
        assert issubclass(kind, LatentAnomalyError) and issubclass(kind, ValueError)

        def failing(args, kind=kind):
            raise kind("the brain mask is empty")

        monkeypatch.setattr(cli_main, "command", lambda name, failing=failing: failing)
        assert main(["info"]) == 2
        assert capsys.readouterr().err == "error: the brain mask is empty\n"


def test_evaluate_min_lesion_ml_counts_only_lesions_of_that_size(tmp_path, mslub_sample, capsys):
    """The FLAIR baseline on the MS patient: with --min-lesion-ml the lesion-wise counts keep only the ground-truth
    components of at least that volume (counted here independently), and a negative value is one error line."""
    import numpy as np
    import SimpleITK as sitk
    from scipy import ndimage

    cases = tmp_path / "cases.csv"
    cases.write_text(f"case_id,flair,label\nmslub07,{mslub_sample['FLAIR']},{mslub_sample['lesions']}\n")
    label = sitk.ReadImage(str(mslub_sample["lesions"]))
    components, _ = ndimage.label(sitk.GetArrayFromImage(label) > 0, structure=np.ones((3, 3, 3)))
    volumes = np.bincount(components.ravel())[1:] * float(np.prod(label.GetSpacing())) / 1000
    counts = {}
    for minimum in ("0", "0.1"):
        out = tmp_path / f"report{minimum}"
        argv = ["evaluate", "--cases", str(cases), "--out", str(out), "--methods", "intensity:flair:high",
                "--no-report", "--min-lesion-ml", minimum]  # fmt: skip
        assert main(argv) == 0
        row = json.loads((out / "metrics.json").read_text())["cases"][0]
        counts[minimum] = row["n_lesions"]
        title = json.loads((out / "metrics.json").read_text())["title"]
        assert ("at least 0.1 mL" in title) == (minimum == "0.1")  # the report says which lesions it counts
    assert counts["0.1"] == int((volumes >= 0.1).sum()) < counts["0"]
    capsys.readouterr()
    assert main(["evaluate", "--cases", str(cases), "--out", str(tmp_path / "x"), "--min-lesion-ml", "-1"]) == 2
    assert capsys.readouterr().err == "error: --min-lesion-ml must be a number >= 0, not -1.0\n"
    assert not (tmp_path / "x").exists()
