"""Paths that cannot be followed (symbolic link loops, broken links, unreachable folders) as one clear reason.

Why: Python reports these in ways a user cannot act on (``Path.resolve`` raises ``RuntimeError: Symlink loop``,
``Path.exists`` answers False for a loop as for a missing file). Every door asks here first, so a bad path is one
``error:`` line naming what is wrong with it, and a folder full of such paths fails case by case in a batch.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import InputError

__all__ = ["check_path", "describe_os_error", "link_problem", "path_problem", "resolved"]


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be followed, or ``None`` when it can (or is simply absent: callers say so themselves)."""
    try:
        os.stat(path)
        return None
    except OSError as error:
        return _reason(Path(path), error)
    except ValueError:  # an embedded NUL byte
        return "is not a valid path (it holds a NUL character)"


def link_problem(path: str | os.PathLike[str]) -> str | None:
    """Only the symbolic-link problems of ``path`` (a loop, a broken link): an output path may be absent, or under
    a folder that cannot be created, and its writer says so in its own words."""
    try:
        os.stat(path)
        return None
    except OSError as error:
        if error.errno == errno.ELOOP or (error.errno == errno.ENOENT and Path(path).is_symlink()):
            return _reason(Path(path), error)
        return None
    except ValueError:
        return None


def _reason(path: Path, error: OSError) -> str | None:
    if error.errno == errno.ELOOP:
        return "is a symbolic link loop (or goes through one): no file can be reached; point it at a real file"
    if error.errno == errno.ENOENT:
        if path.is_symlink():
            return f"is a broken symbolic link (to {os.readlink(path)}, which does not exist)"
        return None
    if error.errno == errno.ENAMETOOLONG:
        return "the path is too long for the file system"
    if error.errno == errno.EACCES:
        return "cannot be reached: permission denied on a folder above it; check the permissions"
    if error.errno == errno.ENOTDIR:
        return "cannot be reached: a part of the path is a file, not a folder"
    return f"cannot be reached ({error.strerror or error})"


def check_path(path: str | os.PathLike[str]) -> None:
    """Raise ``InputError`` naming ``path`` when it cannot be followed (see :func:`path_problem`)."""
    problem = path_problem(path)
    if problem:
        raise InputError(f"{path}: {problem}")


def resolved(path: str | os.PathLike[str]) -> Path:
    """``Path(path).resolve()``, or ``InputError`` with the reason instead of Python's RuntimeError/OSError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):
        check_path(path)
        raise InputError(f"{path}: cannot be followed (a symbolic link loop or an unreachable folder)") from None


def describe_os_error(error: OSError) -> str:
    """An ``OSError`` from a user's file as one line: the path and what went wrong with it."""
    name = error.filename if error.filename is not None else ""
    reason = _reason(Path(name), error) if name else None
    text = reason or (error.strerror or str(error))
    return f"{name}: {text}" if name else text
