"""A batch case's thread budget reaches every library that starts threads, and a library call gives the caller's
settings back."""

from __future__ import annotations

import subprocess
import sys

import SimpleITK as sitk
import torch
from threadpoolctl import threadpool_info

from LatentAnomalyLib.cohort.thread_budget import thread_budget


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_thread_budget_limits_torch_blas_and_itk_and_restores_them():
    before = (torch.get_num_threads(), sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), _blas_threads())
    torch.set_num_threads(2)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    try:
        with thread_budget(1):
            assert torch.get_num_threads() == 1
            assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1
            assert _blas_threads() == {1}  # numpy's and scipy's own OpenBLAS both
        assert torch.get_num_threads() == 2
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 2
    finally:
        torch.set_num_threads(before[0])
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before[1])
    assert _blas_threads() == before[2]


def test_a_worker_process_keeps_its_budget():
    script = (
        "import SimpleITK as sitk, torch\n"
        "from threadpoolctl import threadpool_info\n"
        "from LatentAnomalyLib.cohort.thread_budget import set_thread_budget\n"
        "set_thread_budget(1)\n"
        "from LatentAnomalyLib.bundle.model import Model\n"
        "Model.load(None)  # what a worker loads after its budget: scipy's BLAS must be limited too\n"
        "blas = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "print(torch.get_num_threads(), sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), sorted(set(blas)), len(blas))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    torch_threads, itk_threads, blas, pools = out.stdout.rsplit(maxsplit=3)
    assert (torch_threads, itk_threads, blas) == ("1", "1", "[1]")
    assert int(pools) >= 1
