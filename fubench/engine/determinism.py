"""Reproducible numbers on CPU, whatever the thread count.

A CPU run gives the same bits with 1, 2 or N torch threads (so ``--jobs N`` equals a
serial run bit for bit) when two things hold:

* oneDNN (``torch.backends.mkldnn``) is off: its convolutions split work by thread, so
  their sums depend on the thread count. Without it torch convolves through MKL's GEMM;
* MKL runs in strict conditional numerical reproducibility mode (``MKL_CBWR=AUTO,STRICT``):
  the same code path and the same reduction order whatever the thread count. MKL reads
  the variable once, at its first call, so ``import fubench`` sets it (unless the user
  set it) before any computation; :func:`settings` reads back the mode MKL actually runs
  in and records it in every result's provenance.

NumPy's BLAS (the attack models of some metrics) is limited to the same thread count.

Speed, not bits: ``import fubench`` also sets ``OMP_WAIT_POLICY=PASSIVE`` (unless the
user set it), so that an OpenMP thread waiting for its team sleeps instead of spinning.
On a busy machine a spinning thread burns the core its descheduled team-mate needs, and
training slowed down 10–20×; tests/test_bench_contention.py measures it.
A CUDA run is not reproducible bit for bit (cuBLAS and cuDNN pick kernels and reduction
orders at run time), nor are two CPUs with different instruction sets (MKL's ``AUTO``
picks the code path by processor); the provenance says so. The cost in speed:
docs/methods.md, "Reproducibility"."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import torch

#: MKL's strict conditional numerical reproducibility mode
MKL_MODE = "AUTO,STRICT"
_MKL_CBWR_ALL, _MKL_CBWR_STRICT = -1, 0x10000
_BLAS_LIMITS: list[Any] = []


def configure(threads: int | None = None) -> None:
    """Put this process in the reproducible CPU mode; ``threads`` (when given) sets the
    torch and NumPy-BLAS thread counts. Idempotent."""
    os.environ.setdefault("MKL_CBWR", MKL_MODE)
    torch.backends.mkldnn.enabled = False
    if threads is not None and threads >= 1:
        torch.set_num_threads(threads)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - scikit-learn depends on it
            return
        _BLAS_LIMITS[:] = [threadpool_limits(limits=threads, user_api="blas")]


def mkl_mode() -> str:
    """The reproducibility mode MKL runs in, read from MKL itself: "AUTO,STRICT" when
    strict; the variable's value, marked unverified, where MKL cannot be asked."""
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return f"{os.environ.get('MKL_CBWR', 'unset')} (unverified)"
    get.argtypes, get.restype = [ctypes.c_int], ctypes.c_int
    mode = get(_MKL_CBWR_ALL)
    if mode & _MKL_CBWR_STRICT:
        return MKL_MODE
    return f"not strict (MKL mode {mode}: MKL ran before fubench could set MKL_CBWR)"


def settings(device: torch.device) -> dict[str, Any]:
    """What a result's bits depend on besides code, data and seed (for provenance)."""
    mode = mkl_mode()
    cpu_ok = mode == MKL_MODE and not torch.backends.mkldnn.enabled
    if device.type == "cuda":
        why = "no: CUDA kernels choose their reduction order at run time"
    elif cpu_ok:
        why = (
            "yes: CPU, oneDNN off, MKL strict: the same bits on any thread count (on "
            "processors with the same instruction set)"
        )
    else:
        why = "only at this thread count: oneDNN on or MKL not in strict mode"
    return {
        "torch_threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.enabled),
        "mkl_cbwr": mode,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        # how waiting OpenMP threads behave: speed on a busy machine, never the bits
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "bitwise_reproducible": why,
    }
