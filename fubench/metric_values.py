"""What a metric may give a row: a float, or None where it is undefined.

Tensors and numpy scalars of one element become floats. Anything else — a string, a
list, a boolean, NaN, an infinity, a number beyond any metric's range — is that
metric's failure on that row, said on one line with the metric's name and what it
returned (:class:`MetricValueError`): never a number the row did not measure, never a
silent None."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from fubench.errors import FubenchError, shown

#: no metric of a benchmark reaches this magnitude (work counts in GFLOP, history in
#: bytes): a value beyond is a bug, and tables that average or divide it would overflow
LARGEST = 1e15
#: a ``percent`` metric is a share, or a difference of shares: from -1 to 1 (×100 shown)
SHARE = 1.0 + 1e-9


class MetricValueError(FubenchError):
    """A metric returned something that is not a measurement."""


def metric_value(name: str, value: Any, percent: bool = False) -> float | None:
    """``value`` as the float a row stores (None: undefined), or MetricValueError."""
    if value is None:
        return None
    number = _as_float(value)
    if number is None:
        raise MetricValueError(
            f"metric '{name}' returned {type(value).__name__} {shown(value)}; return a "
            f"float, or None where it is undefined"
        )
    if not math.isfinite(number):
        raise MetricValueError(
            f"metric '{name}' returned {number} ({type(value).__name__}); return None where "
            f"it is undefined, never NaN or an infinity"
        )
    if abs(number) > LARGEST:
        raise MetricValueError(
            f"metric '{name}' returned {number:.3g} ({type(value).__name__}), beyond "
            f"±{LARGEST:.0e}: no measurement is that large"
        )
    if percent and abs(number) > SHARE:
        raise MetricValueError(
            f"metric '{name}' returned {number:.6g} ({type(value).__name__}); a percent "
            f"metric is a share from -1 to 1 (shown ×100)"
        )
    return number


def _as_float(value: Any) -> float | None:
    """A real number of one element as a float; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):  # int, float, numpy's numbers
        return float(value)
    one = isinstance(value, torch.Tensor) or type(value).__module__ == "numpy"
    if one and getattr(value, "dtype", None) is not None and _size(value) == 1:
        item = value.item()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return float(item)
    return None


def _size(value: Any) -> int:
    size = value.numel() if isinstance(value, torch.Tensor) else getattr(value, "size", 0)
    return int(size) if isinstance(size, int) else 0
