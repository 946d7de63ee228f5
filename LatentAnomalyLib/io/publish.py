"""The output folder of one detection: locked, staged in a hidden folder, published as a whole.

Why: two runs into the same ``--out`` must not interleave or silently replace each other's
results, and a run killed half-way must leave neither half a result nor ``.partial`` files that a
rerun trips over. So a run takes ``<parent>/.<name>.lock`` (an ``flock``, released by the kernel
even on ``kill -9``), writes everything into a hidden ``<parent>/.<name>.detect-*`` folder and, when
all files are complete, renames that folder to ``--out`` in one step. Stale staging folders of
killed runs are removed by the next run that holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError
from .path_checks import link_problem, path_problem, resolved

__all__ = ["check_not_inside_inputs", "folder_lock", "output_folder"]


def _created_parents(out: Path) -> list[Path]:
    return [p for p in reversed([out, *out.parents]) if not p.exists()]


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        if folder.is_dir() and not any(folder.iterdir()):
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_not_inside_inputs(out: Path, inputs: Iterable[str | os.PathLike[str]]) -> None:
    target = resolved(out)
    for item in inputs:
        source = Path(item)
        if path_problem(source) is None and source.is_dir():
            folder = resolved(source)
            if target == folder or folder in target.parents:
                raise InputError(
                    f"{out}: --out is inside the input folder {source}; results would be mixed into the DICOM series, "
                    "choose another --out"
                )


@contextlib.contextmanager
def folder_lock(out: Path, path: Path | None = None, holder: str = "detection") -> Iterator[list[str]]:
    """Hold an exclusive ``flock`` on ``path`` (default ``<parent>/.<name>.lock``) while writing to ``out``; a second
    run finds it held and is refused in one line. The kernel releases it when the process dies, even on kill -9.

    Yields notes for the user: a lock file that was there before this run took it was left by a killed run (a
    finished or interrupted one removes its own); it is taken over and removed at the end, and the note says so.
    """
    path = out.parent / f".{out.name}.lock" if path is None else path
    notes: list[str] = []
    while True:
        existed = path.exists()
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as error:
            raise InputError(
                f"{out}: cannot write the output folder ({error.strerror or error}); choose another --out"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"{out}: another {holder} is writing to this output folder now; wait for it or choose another --out"
            ) from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break  # the file we locked is still the lock file (not one a finishing run just removed)
        except OSError:
            pass
        os.close(fd)
    if existed:
        notes.append(f"removed {path.name} left by an interrupted {holder} (killed before it could clean up)")
    try:
        yield notes
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _publish(staging: Path, out: Path, result_names: set[str]) -> None:
    """Move the staged files to ``out``: one folder rename when ``out`` is new, empty or held only results."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        os.replace(staging, out)  # an empty directory is replaced atomically
        return
    if {p.name for p in out.iterdir()} <= result_names:  # only earlier results (--overwrite): swap folders
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "previous")
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
        return
    # ``out`` also holds the user's other files: replace ours one by one, the summary last
    names = sorted(p.name for p in staging.iterdir())
    for name in [n for n in names if n != "summary.json"] + [n for n in names if n == "summary.json"]:
        os.replace(staging / name, out / name)
    shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def output_folder(
    out_dir: str | os.PathLike[str],
    overwrite: bool = False,
    result_names: Iterable[str] = (),
    inputs: Iterable[str | os.PathLike[str]] = (),
    notes: list[str] | None = None,
) -> Iterator[Path]:
    """Lock ``out_dir``, yield a hidden staging folder beside it, and publish it as ``out_dir`` on success.

    ``result_names`` are the file names a detection writes: an ``out_dir`` holding any of them is
    refused unless ``overwrite``. An existing empty folder is fine (Slicer creates temporary
    folders first). ``inputs`` that are folders (DICOM series) may not contain ``out_dir``. On
    failure nothing is left: no staging folder, no lock file, no output folder it created. What a killed earlier
    run left (its lock file, its staging folder with partial files) is removed, and ``notes`` gets a line saying so.
    """
    problem = link_problem(out_dir)  # a link loop or a broken link as --out
    if problem:
        raise InputError(f"{Path(out_dir)}: the output folder {problem}; choose another --out")
    out = Path(out_dir).absolute()
    names = set(result_names)
    if out.exists() and not out.is_dir():
        raise InputError(f"{Path(out_dir)}: exists and is not a folder; choose another --out")
    check_not_inside_inputs(out, inputs)
    created = _created_parents(out.parent)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _remove_empty(created)
        raise InputError(
            f"{Path(out_dir)}: cannot create the output folder ({error.strerror or error}); choose another --out"
        ) from None
    try:
        with folder_lock(out) as leftovers:
            existing = sorted({p.name for p in out.iterdir()} & names) if out.is_dir() else []
            if existing and not overwrite:
                raise InputError(
                    f"{Path(out_dir)}: already holds results ({', '.join(existing)}); pass --overwrite or choose "
                    "another --out"
                )
            if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
                raise InputError(f"{Path(out_dir)}: the output folder is not writable; choose another --out")
            for pattern in (f".{out.name}.detect-*", f".{out.name}.old-*"):  # left by a killed run; we hold the lock
                for stale in sorted(out.parent.glob(pattern)):
                    shutil.rmtree(stale, ignore_errors=True)
                    leftovers.append(f"removed {stale.name}, the unfinished results of an interrupted detection")
            if notes is not None:
                notes.extend(leftovers)
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.detect-", dir=out.parent))
            try:
                yield staging
                _publish(staging, out, names)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        _remove_empty(created)
        raise
