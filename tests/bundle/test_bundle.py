"""Bundle round trip, checksum refusal, missing files, newer formats, no code in bundles."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from LatentAnomalyLib.bundle.format import FORMAT_VERSION, Bundle, BundleError, BundleWriter


def _write(tmp_path):
    writer = BundleWriter(tmp_path / "bundle")
    writer.add_json("config.json", {"a": 1})
    writer.add_arrays("arrays.safetensors", {"x": np.arange(6, dtype=np.float32).reshape(2, 3)})
    writer.add_state_dict("net.safetensors", torch.nn.Linear(3, 2).state_dict())
    return writer.finish("toy", "0.0.1")


def test_round_trip(tmp_path):
    folder = _write(tmp_path)
    bundle = Bundle.load(folder)
    assert bundle.json("config.json") == {"a": 1}
    assert np.array_equal(bundle.arrays("arrays.safetensors")["x"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert set(bundle.state_dict("net.safetensors")) == {"weight", "bias"}
    assert bundle.manifest["model_name"] == "toy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporary folders left


def test_modified_file_is_refused(tmp_path):
    folder = _write(tmp_path)
    data = bytearray((folder / "arrays.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "arrays.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"checksum mismatch for arrays\.safetensors"):
        Bundle.load(folder)


def test_missing_file_and_newer_format_are_refused(tmp_path):
    folder = _write(tmp_path)
    (folder / "net.safetensors").unlink()
    with pytest.raises(BundleError, match="missing"):
        Bundle.load(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="newer"):
        Bundle.load(folder)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a model bundle"):
        Bundle.load(tmp_path)


def test_bundled_default_model_is_data_only_and_verified(model):
    from tests.conftest import MODEL

    allowed = (".json", ".safetensors", ".nii.gz")
    files = model.bundle.manifest["files"]
    assert all(name.endswith(allowed) for name in files)
    assert sum((MODEL / f).stat().st_size for f in files) < 56e6  # 1.10.0: + the asymmetry statistics (4.9 MB)
    Bundle.load(MODEL).verify()


@pytest.mark.parametrize("damage", ["truncated", "changed", "missing", "emptied"])
def test_damaged_file_is_refused_by_name(tmp_path, damage):
    folder = _write(tmp_path)
    target = folder / "net.safetensors"
    data = target.read_bytes()
    if damage == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "changed":
        target.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
    elif damage == "missing":
        target.unlink()
    else:
        target.write_bytes(b"")
    with pytest.raises(BundleError, match=r"net\.safetensors") as caught:
        Bundle.load(folder)
    assert ("missing" if damage == "missing" else "checksum mismatch") in str(caught.value)
    assert "\n" not in str(caught.value)


def test_newer_format_names_both_versions(tmp_path):
    folder = _write(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 7
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=rf"bundle format 7 is newer than this library reads \({FORMAT_VERSION}\); upgrade"):
        Bundle.load(folder)


def test_cli_refuses_a_truncated_bundle_in_one_line(tmp_path, capsys):
    import shutil

    from LatentAnomalyLib.cli.main import main
    from tests.conftest import MODEL

    copy = tmp_path / "model"
    shutil.copytree(MODEL, copy)
    name = max(Bundle.load(copy, verify=False).manifest["files"], key=lambda f: (copy / f).stat().st_size)
    data = (copy / name).read_bytes()
    (copy / name).write_bytes(data[: len(data) // 3])
    assert main(["info", "--model", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and name in err[0]
