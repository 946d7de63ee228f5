"""Kill a process together with everything it started.

``PythonSlicer`` is a launcher that starts the real Python interpreter as a child, and that
interpreter may start workers of its own; killing only the process we started would leave the
inference running (and the GPU busy) after the user pressed Cancel. Plain Python, no psutil,
because Slicer's own Python does not ship it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

IS_WINDOWS = sys.platform.startswith("win")


def _parent_map() -> dict[int, int]:
    """{pid: parent pid} of every process we can see (``/proc`` on Linux, ``ps`` elsewhere)."""
    parents: dict[int, int] = {}
    proc = Path("/proc")
    if proc.is_dir() and (proc / "self" / "stat").exists():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # the process ended while we looked
            # The command name is in parentheses and may contain spaces: parse after the last ')'.
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 1:
                parents[int(entry.name)] = int(fields[1])
        return parents
    try:
        out = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return parents
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            parents[int(parts[0])] = int(parts[1])
    return parents


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (children first, then theirs); empty on Windows."""
    if IS_WINDOWS:
        return []
    children: dict[int, list[int]] = {}
    for child, parent in _parent_map().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        if current in found or current == pid:
            continue
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def kill_tree(pid: int, include_root: bool = True) -> None:
    """Kill ``pid`` and its descendants now (SIGKILL / ``taskkill /T /F``); missing processes are ignored."""
    if IS_WINDOWS:
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        subprocess.run(
            ["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True, check=False, creationflags=flags
        )
        return
    # Freeze the tree first so nobody forks while we collect it, then kill what we found.
    if include_root:
        _signal(pid, signal.SIGSTOP)
    found = descendants(pid)
    for child in found:
        _signal(child, signal.SIGSTOP)
    found += [p for p in descendants(pid) if p not in found]
    for child in reversed(found):
        _signal(child, signal.SIGKILL)
    if include_root:
        _signal(pid, signal.SIGKILL)


def kill_process_group(pgid: int) -> None:
    """Kill a whole POSIX process group (a child started with ``start_new_session=True`` leads one)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (ended, not yet reaped) counts as gone."""
    if IS_WINDOWS:
        out = subprocess.run(
            ["tasklist", "/FI", f"PID eq {pid}", "/NH"], capture_output=True, text=True, check=False
        ).stdout
        return str(pid) in out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): os.kill said it exists
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X")
