"""Keep freed memory in the process on Linux CPUs: the encoder's CPU training step was page-fault bound.

glibc serves every allocation above 32 MiB with a fresh ``mmap`` and returns it to the kernel on
``free``. A training step on the 2 mm grid allocates and frees dozens of activation and gradient
buffers of 40-160 MB, so the kernel zero-fills about 1.5 million fresh pages per step (measured:
4-5 s of system time and a 2x longer step on the 2-core CPU; see docs/encoders.md). Turning mmap
allocation off and raising the trim threshold makes glibc reuse the freed heap instead. The
arithmetic is untouched (bit-identical losses); the process keeps its peak memory until it exits,
which is why only the training command's encoder stage turns it on (not the library function
``train_encoder``, which tests and notebooks call inside longer-lived processes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Ask glibc (Linux only) to reuse freed memory instead of unmapping it; True when applied."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied
