"""Text inputs (case lists, JSON configs and summaries) read with a size limit.

Why: a list or a JSON file is read whole into memory and parsed; a 250 MB manifest (or a device file, or a scan
renamed ``.csv``) would take gigabytes and minutes before any message. The limits are far above any real input
(a 64 MiB case list holds about 300,000 cases; the bundled model's largest JSON file is 11 kB), and the refusal
says what to do instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InputError

MAX_LIST_BYTES = 64 << 20  # case lists (CSV, TSV, text)
MAX_JSON_BYTES = 16 << 20  # configs, bundle files, summaries

__all__ = ["MAX_JSON_BYTES", "MAX_LIST_BYTES", "read_text_limited"]


def read_text_limited(
    path: str | os.PathLike[str], limit: int, what: str, advice: str = "", encoding: str | None = None
) -> str:
    """The text of ``path``, refused (``InputError``) when it is larger than ``limit`` bytes or not a regular file.

    Reads at most ``limit + 1`` bytes whatever the file claims (a device file has size 0 and no end).
    """
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: the {what} is not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1) if info.st_size <= limit else b"\0" * (limit + 1)  # no need to read it
    except OSError as error:
        raise InputError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    if len(data) > limit:
        size = os.stat(path).st_size
        shown = f"{size / 1e6:.0f} MB" if size > limit else f"more than {limit / 1e6:.0f} MB"
        raise InputError(
            f"{path}: the {what} is too large ({shown}; at most {limit / 1e6:.0f} MB is read){'; ' + advice if advice else ''}"
        )
    try:
        return data.decode(encoding or "utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
