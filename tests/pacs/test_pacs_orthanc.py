"""`latent-anomaly pacs` against a real Orthanc: SEG and SR stored, re-read with highdicom, never twice."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main

from .series import seg_on_labelmap, write_series

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

# the committed MS sample is not flagged at 0.05 (p 0.76 with model 1.10.0); at 0.9 it is, so its label map has
# regions to check (the healthy IXI sample gets p 1.0 from the combined rule: flagged at no alpha)
ALPHA = "0.9"


def run_pacs(url: str, out: Path, *options: str) -> int:
    return main(["pacs", url, "--out", str(out), "--once", "--device", "cpu", "--alpha", ALPHA, *options])


def read(data: bytes):
    return pydicom.dcmread(io.BytesIO(data))


@pytest.mark.slow
def test_once_stores_a_seg_and_an_sr_equal_to_the_outputs_and_never_twice(
    orthanc, pacs_login, mslub_sample, tmp_path, capsys
):
    image = sitk.ReadImage(str(mslub_sample["T1"]))
    t1 = tmp_path / "t1"
    uids = write_series(image, t1, description="T1w_MPRAGE", drop=("SliceThickness",))  # as many anonymisers leave it
    write_series(image, tmp_path / "flair", description="t2_flair_tra", study=uids["study"])
    orthanc.upload(t1)
    orthanc.upload(tmp_path / "flair")
    uploaded = orthanc.count_instances()
    out = tmp_path / "state"

    assert run_pacs(orthanc.url, out, "--key-slices") == 0, capsys.readouterr().err
    printed = capsys.readouterr()
    assert "1 series matched (1 MR series not matched): 1 done" in printed.out
    assert "Doe" not in printed.err and "P1" not in printed.err.split()  # no patient data in the log
    segs, srs = orthanc.series_of("SEG"), orthanc.series_of("SR")
    captures = orthanc.series_of("OT")
    assert len(segs) == len(srs) == len(captures) == 1 and orthanc.count_instances() == uploaded + 3
    capture = read(orthanc.instance_files(captures[0])[0])
    assert capture.StudyInstanceUID == uids["study"] and capture.BurnedInAnnotation == "NO"
    picture = capture.pixel_array
    assert picture.ndim == 3 and picture.shape[0] >= 256 and picture.shape[2] == 3
    assert np.all(picture == (0, 255, 51), axis=-1).any()  # the label map's green outline is drawn
    seg_data, sr_data = orthanc.instance_files(segs[0])[0], orthanc.instance_files(srs[0])[0]

    results = out / "results" / uids["series"]
    summary = json.loads((results / "summary.json").read_text())
    thickness = f"Slice Thickness {image.GetSpacing()[2]:g} mm, from the spacing of the slice positions"
    assert any(thickness in w for w in summary["warnings"])
    labelmap = sitk.ReadImage(str(results / "labelmap.nii.gz"))
    expected = sitk.GetArrayFromImage(labelmap)
    assert expected.sum() > 0 and summary["components"]  # the comparisons below cover a region

    seg = hd.seg.Segmentation.from_dataset(read(seg_data))
    assert seg.StudyInstanceUID == uids["study"] and seg.FrameOfReferenceUID == uids["frame"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uids["series"]
    sources = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(p) for p in t1.iterdir())}
    assert np.array_equal(seg_on_labelmap(seg, labelmap, sources), expected)
    algorithm = seg.get_segment_description(1).algorithm_identification[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (
        summary["model"]["name"],
        summary["model"]["version"],
    )

    sr = hd.sr.Comprehensive3DSR.from_dataset(read(sr_data))
    assert sr.StudyInstanceUID == uids["study"]
    evidence = {
        s.SeriesInstanceUID for e in sr.CurrentRequestedProcedureEvidenceSequence for s in e.ReferencedSeriesSequence
    }
    assert evidence == {uids["series"], seg.SeriesInstanceUID}
    report = sr.content
    observer = report.get_observer_contexts()[0]
    device = observer.observer_identifying_attributes
    assert device.model_name == f"{summary['model']['name']} {summary['model']['version']}"
    (subject,) = report.get_image_measurement_groups()
    values = {m.name.meaning: m.value for m in subject.get_measurements()}
    assert values["Subject p-value"] == pytest.approx(summary["subject_p_value"], rel=1e-9)
    assert values["Subject anomaly score"] == pytest.approx(summary["subject_score"], rel=1e-9)
    assert values["Flagged volume"] == pytest.approx(summary["flagged_volume_ml"], rel=1e-9)
    flag = subject.get_qualitative_evaluations()[0].value
    assert flag.meaning == ("Yes" if summary["subject_flagged"] else "No")
    regions = report.get_volumetric_roi_measurement_groups()
    assert len(regions) == len(summary["components"])
    for group, region in zip(regions, summary["components"]):
        assert str(group.tracking_identifier) == f"Region {region['id']}"
        measured = {m.name.meaning: m.value for m in group.get_measurements()}
        assert measured["Volume"] == pytest.approx(region["volume_ml"], rel=1e-9)
        assert measured["Peak anomaly score"] == pytest.approx(region["peak_score"], rel=1e-9)
        assert measured["Region p-value"] == pytest.approx(region["p_value"], rel=1e-9)
        referenced = group.referenced_segment
        assert referenced.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert list(referenced.referenced_segment_numbers) == [1]
        assert referenced.source_series_for_segmentation.value == uids["series"]

    # a second run adds nothing
    assert run_pacs(orthanc.url, out, "--key-slices") == 0
    assert "0 done, 1 done before" in capsys.readouterr().out
    assert orthanc.count_instances() == uploaded + 3
    # killed after storing, before recording: the PACS is asked, and the same objects are not stored again
    (out / "state" / f"{uids['series']}.json").unlink()
    assert run_pacs(orthanc.url, out, "--key-slices") == 0
    assert "already in the PACS" in capsys.readouterr().err
    assert orthanc.count_instances() == uploaded + 3
    record = json.loads((out / "state" / f"{uids['series']}.json").read_text())
    stored = {s["MainDicomTags"]["SeriesInstanceUID"] for s in [*segs, *srs, *captures]}
    assert record["status"] == "done" and set(record["already_in_pacs"]) == stored


def test_wrong_credentials_give_one_line_and_exit_2(orthanc, ixi_sample, tmp_path, capsys, monkeypatch):
    write_series(sitk.ReadImage(str(ixi_sample)), tmp_path / "t1")
    orthanc.upload(tmp_path / "t1")
    monkeypatch.setenv("LATENT_ANOMALY_PACS_USER", "radiology")
    monkeypatch.setenv("LATENT_ANOMALY_PACS_PASSWORD", "wrong-password")
    out = tmp_path / "state"
    assert run_pacs(orthanc.url, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "refused the credentials (HTTP 401)" in err[0]
    assert "wrong-password" not in err[0]
    assert not list((out / "state").glob("*.json")) and not orthanc.series_of("SEG")
    # the same from a credentials file; a password is never an option of the command line
    secrets = tmp_path / "pacs.json"
    secrets.write_text(json.dumps({"user": "radiology", "password": "also-wrong"}))
    assert run_pacs(orthanc.url, out, "--credentials", str(secrets)) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_code:
        main(["pacs", orthanc.url, "--out", str(out), "--password", "x"])
    assert exit_code.value.code == 2


def test_a_series_that_cannot_carry_a_seg_fails_before_detection_and_writes_nothing(
    orthanc, pacs_login, ixi_sample, tmp_path, capsys, monkeypatch
):
    import LatentAnomalyLib.outputs.detection as detection

    def no_detection(*args, **kwargs):
        raise AssertionError("the detection must not run")

    monkeypatch.setattr(detection, "detect_file", no_detection)
    uids = write_series(sitk.ReadImage(str(ixi_sample)), tmp_path / "t1", drop=("FrameOfReferenceUID",))
    orthanc.upload(tmp_path / "t1")
    uploaded = orthanc.count_instances()
    out = tmp_path / "state"
    assert run_pacs(orthanc.url, out) == 3
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if "failed:" in line]
    assert len(failed) == 1 and uids["series"] in failed[0] and "Frame of Reference" in failed[0]
    record = json.loads((out / "state" / f"{uids['series']}.json").read_text())
    assert record["status"] == "failed" and "Frame of Reference" in record["reason"]
    assert orthanc.count_instances() == uploaded and not (out / "results" / uids["series"]).exists()
    assert run_pacs(orthanc.url, out) == 0  # recorded: not tried again without --retry-failed
    assert "1 done before, 0 failed" in capsys.readouterr().out
