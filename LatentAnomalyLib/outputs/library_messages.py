"""Log records and warnings of the DICOM libraries (highdicom, pydicom) as the product's own messages.

Why: Python prints an unhandled library warning as a raw line on stderr ("WARNING:highdicom...", or a
``UserWarning`` with a source line), which reads like a failure on a healthy scan and breaks the CLI's promise of
``error:``/``warning:``/``note:`` lines. Inside :func:`library_messages` they are collected instead, de-duplicated,
and the caller puts them in ``summary.json`` messages (printed as ``note:`` lines).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator

LIBRARY_LOGGERS = ("highdicom", "pydicom")
_LOCK = threading.RLock()  # warnings filters are process-wide: one collector at a time (pacs --workers)


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        _add(self.sink, record.name.split(".")[0], record.getMessage())


def _add(sink: list[str], library: str, text: str) -> None:
    """Add ``library: text`` once (pydicom both logs and warns the same text; its link to the standard is dropped)."""
    text = " ".join(text.split(" Please see <")[0].split())
    if text and not any(line.split(": ", 1)[-1] == text for line in sink):
        sink.append(f"{library}: {text}")


@contextlib.contextmanager
def library_messages(sink: list[str] | None = None) -> Iterator[list[str]]:
    """Collect the DICOM libraries' warnings (log records and ``warnings.warn``) into the yielded list, one line each,
    instead of letting them reach stderr. Other threads entering it wait (the warnings machinery is global)."""
    messages: list[str] = [] if sink is None else sink
    handler = _Collect(messages)
    saved = []
    _LOCK.acquire()
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate))
        logger.addHandler(handler)
        logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        for warning in caught:
            origin = next((n for n in LIBRARY_LOGGERS if f"/{n}/" in warning.filename), warning.category.__name__)
            _add(messages, origin, str(warning.message))
    finally:
        for logger, propagate in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
        _LOCK.release()
