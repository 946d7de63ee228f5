"""Case lists and JSON inputs are read with a size limit (``io/text_files.py``): a 250 MB manifest is refused at
once, in one line, instead of being read whole."""

from __future__ import annotations

import os

import pytest

from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.io.text_files import MAX_LIST_BYTES, read_text_limited
from tests.io.test_bad_inputs import _assert_one_error, _run


def _sparse(path, size: int):
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def test_a_250_mb_manifest_is_refused_without_reading_it(tmp_path, capfd):
    listing = _sparse(tmp_path / "cohort.csv", 250 * 1000 * 1000)
    code, err = _run(["batch", str(listing), "--out", str(tmp_path / "out")], capfd)
    _assert_one_error(code, err, "too large")
    assert code == 2 and "250 MB" in err[0] and "split it" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "review"])
def test_oversized_json_inputs_are_refused(tmp_path, capfd, command):
    if command == "train":
        config = _sparse(tmp_path / "config.json", 40 << 20)
        argv = ["train", "--config", str(config), "--out", str(tmp_path / "bundle")]
    else:
        folder = tmp_path / "case"
        folder.mkdir()
        _sparse(folder / "summary.json", 40 << 20)
        argv = ["review", str(folder), "--port", "0"]
    code, err = _run(argv, capfd)
    _assert_one_error(code, err, "too large")
    assert code == 2


def test_limits_hold_for_files_that_lie_about_their_size(tmp_path):
    with pytest.raises(InputError, match="not a regular file"):
        read_text_limited("/dev/zero", MAX_LIST_BYTES, "case list")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):  # refused before open, which would block
        read_text_limited(fifo, MAX_LIST_BYTES, "case list")


def test_small_files_and_bad_encodings(tmp_path):
    good = tmp_path / "a.csv"
    good.write_text("path\nx.nii.gz\n")
    assert read_text_limited(good, 100, "case list") == "path\nx.nii.gz\n"
    with pytest.raises(InputError, match="too large"):
        read_text_limited(good, 5, "case list")
    bad = tmp_path / "b.csv"
    bad.write_bytes(b"path\n\xff\xfe.nii\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_text_limited(bad, 100, "case list")
