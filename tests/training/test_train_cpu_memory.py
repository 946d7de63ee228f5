"""The training process's allocator setting: activation-sized buffers come from glibc's heap, not fresh mmaps.

What is asserted is the allocator's decision (``mallinfo2``: bytes in mmapped blocks while a 200 MB buffer is
alive), which is deterministic. Whether the next buffer then reuses the freed heap without page faults depends on
what else was allocated meanwhile (a small block above the freed one blocks the reuse of an aligned buffer of the
same size): under CPU load the fault count per buffer varied from 0 to 48,828 between runs, so it is measured by
benchmarks/encoder_training_profile.py, not asserted here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys, torch

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    from LatentAnomalyLib.training.cpu_memory import keep_freed_memory
    assert keep_freed_memory()
x = torch.ones(50_000_000)  # 200 MB, like one activation buffer of a training step
print(libc.mallinfo2().hblkhd // 2**20)
"""


def _mmapped_mb(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_large_buffers_come_from_the_heap_not_from_fresh_mmaps():
    assert _mmapped_mb("default") >= 190  # glibc serves the 200 MB buffer with its own mmap (unmapped on free)
    assert _mmapped_mb("keep") < 50  # after keep_freed_memory it comes from the heap, which free() does not unmap
