"""One case's CPU threads, across every library that starts threads: torch (and its OpenMP pool), the BLAS under
numpy and scipy, and ITK.

A batch gives each case ``--threads`` threads so that N workers use N x threads cores. Limiting torch alone left
the BLAS (OpenBLAS spins its threads while it waits) and ITK at one thread per core in every worker: two workers on
two cores ran up to eight busy threads, and their speed moved from run to run (docs/cluster.md). The same budget
applies with one worker, so a case's numbers do not depend on how many workers ran it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def _load_thread_pools() -> None:
    """threadpoolctl limits only the libraries already loaded: load numpy's and scipy's own OpenBLAS first (scipy
    brings its own, which a worker would otherwise load later, while it reads the model, at one thread per core)."""
    import numpy  # noqa: F401
    import scipy.linalg
    import scipy.ndimage  # noqa: F401


def set_thread_budget(threads: int) -> None:
    """For a worker process, for good: every library's thread pool at ``threads``."""
    import SimpleITK as sitk
    import torch
    from threadpoolctl import threadpool_limits

    _load_thread_pools()
    torch.set_num_threads(threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    threadpool_limits(limits=threads)  # kept: the limits stay until another call changes them


@contextlib.contextmanager
def thread_budget(threads: int) -> Iterator[None]:
    """Within the block, every library's thread pool at ``threads``; the caller's settings come back after it (a
    library call must not change its caller's settings)."""
    import SimpleITK as sitk
    import torch
    from threadpoolctl import threadpool_limits

    _load_thread_pools()
    previous_torch = torch.get_num_threads()
    previous_itk = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    torch.set_num_threads(threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous_torch)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous_itk)
