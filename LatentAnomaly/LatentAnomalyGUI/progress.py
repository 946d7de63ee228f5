"""Turn the CLI's output, as it arrives in arbitrary chunks, into progress updates and an error message.

The CLI prints ``PROGRESS <percent> <stage>`` lines (parsed by the library's own
``LatentAnomalyLib.progress.parse_line``, which needs no torch) and, on a user error, exactly one
line starting with ``error: ``. A process runner delivers output in chunks that may end in the
middle of a line, so text is buffered until a newline arrives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from LatentAnomalyLib.progress import parse_line

ERROR_PREFIX = "error: "
NOTE_PREFIX = "note: "

ProgressCallback = Callable[[float, str], None]


class ProgressTracker:
    """Feed it output chunks; it calls ``on_progress(fraction, stage)`` and remembers errors, notes and a tail."""

    def __init__(self, on_progress: ProgressCallback | None = None, tail_lines: int = 40):
        self.on_progress = on_progress
        self.fraction = 0.0
        self.stage = ""
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self._pending = ""

    def feed(self, chunk: str) -> None:
        """Consume a chunk of output; complete lines are handled now, a trailing partial line waits."""
        text = self._pending + chunk.replace("\r\n", "\n").replace("\r", "\n")
        *lines, self._pending = text.split("\n")
        for line in lines:
            self._handle(line)

    def finish(self) -> None:
        """Handle a last line that had no newline (the process has ended, nothing more will come)."""
        if self._pending:
            line, self._pending = self._pending, ""
            self._handle(line)

    def _handle(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        parsed = parse_line(line)
        if parsed is not None:
            self.fraction = min(max(parsed[0], 0.0), 1.0)
            self.stage = parsed[1]
            if self.on_progress is not None:
                self.on_progress(self.fraction, self.stage)
            return
        self.tail.append(line)
        if line.startswith(ERROR_PREFIX):
            self.errors.append(line[len(ERROR_PREFIX) :].strip())
        elif line.startswith(NOTE_PREFIX):
            self.notes.append(line[len(NOTE_PREFIX) :].strip())

    @property
    def error_message(self) -> str:
        """The CLI's one-line error (the last one if there were several), or ``""``."""
        return self.errors[-1] if self.errors else ""

    def failure_message(self, exit_code: int | None) -> str:
        """Best one-paragraph explanation of a failed run: the error line, else the last output, else the code."""
        if self.error_message:
            return self.error_message
        if self.tail:
            return f"the detection process failed (exit code {exit_code}); last output: {self.tail[-1]}"
        return f"the detection process failed (exit code {exit_code}) without output"

    @property
    def log(self) -> str:
        """The last non-progress lines, for a 'details' box next to an error message."""
        return "\n".join(self.tail)
