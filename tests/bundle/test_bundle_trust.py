"""A bundle is used only through its manifest: every file listed, inside the bundle, verified before use.

Each hostile or malformed bundle (rehashed so that checksums alone do not catch it) ends in one
`error:` line with exit 2, before any file outside the bundle is opened.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

import LatentAnomalyLib.bundle.format as bundle_module
from LatentAnomalyLib.bundle.format import Bundle, BundleError, sha256
from LatentAnomalyLib.cli.main import main
from tests.conftest import MODEL


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("bundle") / "model"
    shutil.copytree(MODEL, copy)
    return copy


def _copy(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(pristine, copy)
    return copy


def _rehash(folder: Path, drop: str | None = None, add: dict[str, str] | None = None) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {name: sha256(folder / name) for name in manifest["files"] if name != drop}
    manifest["files"] = {**files, **(add or {})}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _edit_config(folder: Path, change) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def _one_error(argv: list[str], capfd, words: str) -> str:
    code = main(argv)
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and "unexpected failure" not in err[0], err
    assert words.lower() in err[0].lower(), err
    return err[0]


def _info(folder: Path) -> list[str]:
    return ["info", "--model", str(folder)]


def _detect(folder: Path, source: Path, out: Path, *extra: str) -> list[str]:
    return ["detect", str(source), "--out", str(out), "--model", str(folder), "--device", "cpu", "--progress", "none", *extra]


MANIFESTS = {
    "json_list": ("[1, 2, 3]", "not a JSON object"),
    "deep_nesting": ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
    "format_version_word": (None, "not an integer"),
    "not_json": ("{format: bundle", "unreadable manifest"),
    "files_not_a_dict": (None, "SHA256"),
}


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_malformed_manifest_is_a_clear_error(tmp_path, pristine, name, capfd):
    folder = _copy(pristine, tmp_path)
    text, words = MANIFESTS[name]
    if text is None:
        manifest = json.loads((folder / "manifest.json").read_text())
        if name == "format_version_word":
            manifest["format_version"] = "one"
        else:
            manifest["files"] = ["config.json"]
        text = json.dumps(manifest)
    (folder / "manifest.json").write_text(text)
    _one_error(_info(folder), capfd, words)


@pytest.mark.parametrize("entry", ["../../../../etc/passwd", "/etc/passwd", "scorers/../../outside.json"])
def test_manifest_entry_outside_the_bundle_is_refused_before_any_read(tmp_path, pristine, entry, capfd, monkeypatch):
    folder = _copy(pristine, tmp_path)
    _rehash(folder, add={entry: "0" * 64})
    opened: list[str] = []
    real = bundle_module.sha256
    monkeypatch.setattr(bundle_module, "sha256", lambda path: opened.append(str(path)) or real(path))
    _one_error(_info(folder), capfd, "outside the bundle")
    assert opened == []  # refused while reading the manifest, before verifying any file


def test_entry_escaping_by_symlink_is_refused(tmp_path, pristine, capfd):
    folder = _copy(pristine, tmp_path)
    (tmp_path / "outside.json").write_text("{}")
    (folder / "link.json").symlink_to(tmp_path / "outside.json")
    _rehash(folder, add={"link.json": sha256(tmp_path / "outside.json")})
    _one_error(_info(folder), capfd, "outside the bundle")


def test_template_outside_the_bundle_is_refused(tmp_path, pristine, ixi_sample, capfd):
    folder = _copy(pristine, tmp_path)
    shutil.copyfile(folder / "template_t1.nii.gz", tmp_path / "outside_template_t1.nii.gz")
    _edit_config(folder, lambda c: c["template_files"].update(t1="../outside_template_t1.nii.gz"))
    _rehash(folder)
    _one_error(_detect(folder, ixi_sample, tmp_path / "out"), capfd, "does not list")
    assert not (tmp_path / "out").exists()


def test_template_dropped_from_the_manifest_is_not_used(tmp_path, pristine, ixi_sample, capfd):
    folder = _copy(pristine, tmp_path)
    _rehash(folder, drop="template_wm.nii.gz")
    _one_error(_detect(folder, ixi_sample, tmp_path / "out"), capfd, "template_wm.nii.gz")
    assert not (tmp_path / "out").exists()


def _tensor_file(path: Path, header: bytes, length: int | None = None) -> None:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + b"\0" * 16)


TENSORS = {
    "huge_tensor": json.dumps({"w": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}}).encode(),
    "header_length_huge": b"{}",
    "header_not_json": b"{nope",
}


@pytest.mark.parametrize("name", sorted(TENSORS))
def test_rehashed_bad_safetensors_is_a_clear_error(tmp_path, pristine, ixi_sample, name, capfd):
    folder = _copy(pristine, tmp_path)
    _tensor_file(folder / "latent_stats.safetensors", TENSORS[name], 10**15 if name == "header_length_huge" else None)
    _rehash(folder)
    _one_error(_detect(folder, ixi_sample, tmp_path / "out"), capfd, "unreadable tensor file")
    assert not (tmp_path / "out").exists()


def test_scorer_file_outside_the_manifest_is_refused(tmp_path, pristine, capfd):
    """Format 2 reads each scorer's file (its thresholds too) only through the manifest."""
    folder = _copy(pristine, tmp_path)
    shutil.copyfile(folder / "scorers" / "knn.json", tmp_path / "knn.json")
    _edit_config(folder, lambda c: c["scorers"]["knn"].update(meta="../knn.json"))
    _rehash(folder)
    _one_error(_info(folder), capfd, "does not list")


def test_scorer_file_without_calibration_is_a_clear_error(tmp_path, pristine, capfd):
    folder = _copy(pristine, tmp_path)
    doc = json.loads((folder / "scorers" / "knn.json").read_text())
    doc.pop("calibration")
    (folder / "scorers" / "knn.json").write_text(json.dumps(doc))
    _one_error(_info(folder), capfd, "checksum mismatch for scorers/knn.json")
    _rehash(folder)
    _one_error(_info(folder), capfd, "scorer 'knn' has no calibration")


def test_scorer_file_with_an_unknown_postprocess_option_is_a_clear_error(tmp_path, pristine, capfd):
    folder = _copy(pristine, tmp_path)
    doc = json.loads((folder / "scorers" / "knn.json").read_text())
    doc["postprocess"]["median"] = 3
    (folder / "scorers" / "knn.json").write_text(json.dumps(doc))
    _rehash(folder)
    _one_error(_info(folder), capfd, "scorer 'knn' postprocess: unknown option(s) 'median'")


@pytest.mark.parametrize(
    ("change", "message"),
    [({"subject_statistic": "shifted"}, "unknown subject statistic 'shifted'"),
     ({"regions_shown": "some"}, "unknown regions_shown 'some'"),
     ({"region_statistic": "mass"}, "subject statistic region_peak needs region statistic peak")],
)  # fmt: skip
def test_conformal_rule_unknown_to_this_library_is_a_clear_error(tmp_path, pristine, capfd, change, message):
    folder = _copy(pristine, tmp_path)
    doc = json.loads((folder / "scorers" / "gaussian4mm.json").read_text())
    doc["calibration"]["conformal"].update(change)
    (folder / "scorers" / "gaussian4mm.json").write_text(json.dumps(doc))
    _rehash(folder)
    _one_error(_info(folder), capfd, f"scorer 'gaussian4mm' conformal calibration: {message}")


def test_config_that_does_not_fit_is_a_clear_error(tmp_path, pristine, ixi_sample, capfd):
    folder = _copy(pristine, tmp_path)
    _edit_config(folder, lambda c: c.pop("encoder"))
    _rehash(folder)
    _one_error(_detect(folder, ixi_sample, tmp_path / "out"), capfd, "do not fit")


@pytest.mark.parametrize("command", ["detect", "batch"])
def test_unknown_scorer_is_a_clear_error(tmp_path, ixi_sample, command, capfd):
    out = tmp_path / "out"
    argv = [command, str(ixi_sample), "--out", str(out), "--scorer", "nosuch", "--device", "cpu", "--progress", "none"]
    line = _one_error(argv, capfd, "'nosuch' is not in model")
    assert "gaussian4mm" in line
    assert not out.exists()


def test_bundle_path_refuses_unlisted_names(pristine):
    bundle = Bundle.load(pristine)
    with pytest.raises(BundleError, match="does not list"):
        bundle.path("../outside.json")


@pytest.mark.parametrize(
    ("params", "message"),
    [({"atlas": "nosuch"}, "needs the scorer(s) nosuch"),
     ({"atlas": "gaussian"}, "hypo-intensity direction, not scorer 'gaussian'"),
     ({"atlas_weight": -0.5}, "atlas_weight must be")],
)  # fmt: skip
def test_combined_scorer_whose_parts_do_not_fit_is_a_clear_error(tmp_path, pristine, ixi_sample, capfd, params, message):
    folder = _copy(pristine, tmp_path)
    path = folder / "scorers" / "gaussian4mm_atlas.json"
    doc = json.loads(path.read_text())
    doc["params"].update(params)
    path.write_text(json.dumps(doc))
    _rehash(folder)
    out = tmp_path / "out"
    _one_error(_detect(folder, ixi_sample, out), capfd, message)
    assert not out.exists()
