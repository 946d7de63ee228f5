"""Run the CLI as a child process: stream its output, cancel it with its whole tree, report how it ended.

The logic talks to a :class:`ProcessRunner`, never to ``subprocess`` or ``QProcess`` directly,
so tests can inject a fake and Slicer can use ``QtProcessRunner`` (``qt_runner.py``), whose
callbacks arrive on the GUI thread. :class:`SubprocessRunner` works anywhere (pytest, PythonSlicer,
scripts) but calls its callbacks from a reader thread: do not touch Qt or MRML from them.
"""

from __future__ import annotations

import codecs
import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from .process_tree import IS_WINDOWS, descendants, kill_process_group, kill_tree

OutputCallback = Callable[[str], None]


class RunStatus(str, Enum):
    """How a run ended; cancelled is not a failure and must not show an error dialog."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    exit_code: int | None
    message: str = ""  # set when the process could not even start


FinishedCallback = Callable[[RunResult], None]


class ProcessRunner(Protocol):
    """What the logic needs from a process runner."""

    def start(
        self,
        args: Sequence[str],
        on_output: OutputCallback,
        on_finished: FinishedCallback,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        """Start ``args``; ``on_output(text)`` gets stdout+stderr chunks, ``on_finished(result)`` is called once."""

    def cancel(self) -> None:
        """Kill the process and everything it started; the run then finishes as CANCELLED."""

    def is_running(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``on_finished`` has been called; False if ``timeout`` seconds passed first."""


def status_for(exit_code: int | None, cancelled: bool) -> RunStatus:
    if cancelled:
        return RunStatus.CANCELLED
    return RunStatus.SUCCEEDED if exit_code == 0 else RunStatus.FAILED


class SubprocessRunner:
    """``subprocess.Popen`` plus one reader thread; the child leads its own session/process group."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._done.set()
        self._cancelled = False
        self._lock = threading.Lock()

    def start(
        self,
        args: Sequence[str],
        on_output: OutputCallback,
        on_finished: FinishedCallback,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        if self.is_running():
            raise RuntimeError("a detection is already running; cancel it or wait for it to finish")
        options: dict[str, object] = {}
        if IS_WINDOWS:
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            options["start_new_session"] = True  # so cancel() can kill the whole group at once
        self._cancelled = False
        self._done.clear()
        try:
            self._process = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                **options,  # type: ignore[call-overload]
            )
        except OSError as error:
            self._process = None
            self._done.set()
            on_finished(RunResult(RunStatus.FAILED, None, f"could not start {args[0]}: {error}"))
            return
        self._thread = threading.Thread(
            target=self._pump, args=(self._process, on_output, on_finished), name="LatentAnomaly-reader", daemon=True
        )
        self._thread.start()

    def _pump(self, process: subprocess.Popen[bytes], on_output: OutputCallback, on_finished: FinishedCallback) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = process.stdout
        assert stream is not None
        try:
            while True:
                data = stream.read1(65536)
                if not data:
                    break
                text = decoder.decode(data)
                if text:
                    on_output(text)
            tail = decoder.decode(b"", final=True)
            if tail:
                on_output(tail)
        finally:
            stream.close()
            exit_code = process.wait()
            with self._lock:
                cancelled = self._cancelled
            try:
                on_finished(RunResult(status_for(exit_code, cancelled), exit_code))
            finally:
                self._done.set()

    def is_running(self) -> bool:
        return not self._done.is_set()

    def cancel(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        with self._lock:
            self._cancelled = True
        if IS_WINDOWS:
            kill_tree(process.pid)
            if process.poll() is None:
                process.kill()
            return
        # Anything that left the group (setsid in a grandchild) is found through the parent links.
        strays = descendants(process.pid)
        kill_process_group(process.pid)
        for pid in strays:
            kill_tree(pid)

    def wait(self, timeout: float | None = None) -> bool:
        finished = self._done.wait(timeout)
        if finished and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return finished
