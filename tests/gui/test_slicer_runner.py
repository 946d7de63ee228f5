"""Slicer module without Slicer: the subprocess runner, its errors and cancelling a whole process tree."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time

import pytest

from tests.slicer_gui import (
    POSIX,
    RunResult,
    RunStatus,
    SubprocessRunner,
    process_tree,
    progress,
    runner_module,
)

# ----- process runner ----------------------------------------------------------------------------


def _run(script: str, timeout: float = 30.0):
    runner = SubprocessRunner()
    chunks: list[str] = []
    finished: list = []
    tracker = progress.ProgressTracker()
    seen: list = []
    tracker.on_progress = lambda f, s: seen.append((f, s))

    def on_output(text):
        chunks.append(text)
        tracker.feed(text)

    runner.start([sys.executable, "-c", textwrap.dedent(script)], on_output, finished.append)
    assert runner.wait(timeout)
    tracker.finish()
    return runner, "".join(chunks), finished, tracker, seen


def test_subprocess_runner_success():
    runner, output, finished, _, seen = _run("""
        import sys
        print("PROGRESS 10 read", file=sys.stderr, flush=True)
        print("PROGRESS 100 done", file=sys.stderr, flush=True)
        print("hello")
    """)
    assert finished == [RunResult(RunStatus.SUCCEEDED, 0)]
    assert seen == [(0.1, "read"), (1.0, "done")]
    assert "hello" in output
    assert not runner.is_running()


def test_subprocess_runner_failure_reports_error_line():
    _, _, finished, tracker, _ = _run("""
        import sys
        print("PROGRESS 5 read", file=sys.stderr, flush=True)
        print("error: in.nii: no such file", file=sys.stderr)
        sys.exit(2)
    """)
    assert finished == [RunResult(RunStatus.FAILED, 2)]
    assert tracker.error_message == "in.nii: no such file"


def test_subprocess_runner_cannot_start():
    runner = SubprocessRunner()
    finished = []
    runner.start(["/nonexistent/PythonSlicer", "-m", "x"], lambda text: None, finished.append)
    assert len(finished) == 1 and finished[0].status is RunStatus.FAILED and finished[0].exit_code is None
    assert "could not start /nonexistent/PythonSlicer" in finished[0].message
    assert not runner.is_running() and runner.wait(1)


def _wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


SPAWNING_SCRIPT = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(f"CHILD {child.pid}", flush=True)
    print("PROGRESS 10 read", file=sys.stderr, flush=True)
    time.sleep(120)
"""


def test_subprocess_runner_cancel_kills_the_process_tree():
    runner = SubprocessRunner()
    output: list[str] = []
    finished: list = []
    runner.start([sys.executable, "-c", textwrap.dedent(SPAWNING_SCRIPT)], output.append, finished.append)
    assert _wait_until(lambda: "PROGRESS 10" in "".join(output), 20), "".join(output)
    child = int(re.search(r"CHILD (\d+)", "".join(output)).group(1))
    assert process_tree.is_alive(child)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start([sys.executable, "-c", "pass"], output.append, finished.append)

    started = time.monotonic()
    runner.cancel()
    assert runner.wait(5), "cancel did not end the run"
    assert time.monotonic() - started < 3
    assert len(finished) == 1 and finished[0].status is RunStatus.CANCELLED
    assert _wait_until(lambda: not process_tree.is_alive(child), 5), f"child {child} survived cancel()"
    runner.cancel()  # a second cancel after the end is harmless


def test_run_statuses_are_distinct():
    assert runner_module.status_for(0, cancelled=False) is RunStatus.SUCCEEDED
    assert runner_module.status_for(2, cancelled=False) is RunStatus.FAILED
    assert runner_module.status_for(None, cancelled=False) is RunStatus.FAILED
    assert runner_module.status_for(-9, cancelled=True) is RunStatus.CANCELLED
    assert len({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}) == 3


@pytest.mark.skipif(not POSIX, reason="parent links are read from /proc or ps")
def test_kill_tree_without_a_process_group():
    """What QtProcessRunner relies on: the launcher is not a group leader, its children must still die."""
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SPAWNING_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        child = int(parent.stdout.readline().split()[1])
        assert child in process_tree.descendants(parent.pid)
        process_tree.kill_tree(parent.pid)
        parent.wait(5)
        assert _wait_until(lambda: not process_tree.is_alive(child), 5)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()
