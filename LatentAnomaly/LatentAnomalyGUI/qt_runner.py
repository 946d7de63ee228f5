"""``QProcess``-based runner for Slicer: its signals, and so our callbacks, arrive on the GUI thread.

``qt`` is imported inside the class, never at module import, so this file can be imported (and
its siblings tested) where PythonQt does not exist. Not unit-tested: it needs Slicer.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping, Sequence

from .process_tree import kill_tree
from .runner import FinishedCallback, OutputCallback, RunResult, RunStatus, status_for


class QtProcessRunner:
    """Runs one process at a time with ``qt.QProcess`` (stdout and stderr merged)."""

    def __init__(self) -> None:
        self._process = None
        self._on_output: OutputCallback | None = None
        self._on_finished: FinishedCallback | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._cancelled = False
        self._running = False

    def start(
        self,
        args: Sequence[str],
        on_output: OutputCallback,
        on_finished: FinishedCallback,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        import qt

        if self._running:
            raise RuntimeError("a detection is already running; cancel it or wait for it to finish")
        process = qt.QProcess()
        process.setProcessChannelMode(qt.QProcess.MergedChannels)
        if env is not None:
            environment = qt.QProcessEnvironment()
            for key, value in env.items():
                environment.insert(key, value)
            process.setProcessEnvironment(environment)
        if cwd is not None:
            process.setWorkingDirectory(os.fspath(cwd))
        process.readyReadStandardOutput.connect(self._onReadyRead)
        process.finished.connect(self._onFinished)
        process.errorOccurred.connect(self._onError)
        self._process = process
        self._on_output, self._on_finished = on_output, on_finished
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._cancelled = False
        self._running = True
        process.start(os.fspath(args[0]), [os.fspath(a) for a in args[1:]])

    def _onReadyRead(self) -> None:
        if self._process is None:
            return
        text = self._decoder.decode(bytes(self._process.readAllStandardOutput().data()))
        if text and self._on_output is not None:
            self._on_output(text)

    def _onError(self, error=None) -> None:
        import qt

        # Only a failure to start ends without 'finished'; crashes and kills also emit 'finished'.
        if self._process is not None and self._process.error() == qt.QProcess.FailedToStart:
            message = f"could not start the process: {self._process.errorString()}"
            self._finish(RunResult(RunStatus.FAILED, None, message))

    def _onFinished(self, exitCode=None, exitStatus=None) -> None:
        import qt

        self._onReadyRead()
        process = self._process
        crashed = process.exitStatus() == qt.QProcess.CrashExit
        code = None if crashed else int(process.exitCode())
        self._finish(RunResult(status_for(code, self._cancelled), code))

    def _finish(self, result: RunResult) -> None:
        if not self._running:
            return
        self._running = False
        tail = self._decoder.decode(b"", final=True)
        if tail and self._on_output is not None:
            self._on_output(tail)
        if self._on_finished is not None:
            self._on_finished(result)

    def is_running(self) -> bool:
        return self._running

    def cancel(self) -> None:
        """Kill the launcher, the interpreter it started and any workers; QProcess.kill() alone would orphan them."""
        if not self._running or self._process is None:
            return
        self._cancelled = True
        pid = int(self._process.processId())
        if pid > 0:
            kill_tree(pid)
        self._process.kill()

    def wait(self, timeout: float | None = None) -> bool:
        """Block (the GUI too) until finished; QProcess delivers output and 'finished' while waiting."""
        import qt

        if self._process is None or not self._running:
            return True
        self._process.waitForFinished(-1 if timeout is None else int(timeout * 1000))
        if self._running and self._process.state() == qt.QProcess.NotRunning:
            # A failure to start may be signalled only from the event loop, which is not running here.
            if self._process.error() == qt.QProcess.FailedToStart:
                self._onError()
            else:
                self._onFinished()
        return not self._running
