"""Checking one YAML value against a declared :class:`~fubench.params.Param`, and the
words the messages use. Every message is bounded: a value is shown through
:func:`fubench.errors.shown`, never by a full ``repr``."""

from __future__ import annotations

import math
from typing import Any

from fubench.errors import did_you_mean, shown
from fubench.params import Param

#: the largest integer a value may be: torch and numpy hold nothing larger
MAX_INT = 2**63 - 1
#: a federation of more clients than this is not a simulation this harness can run
MAX_CLIENTS = 10_000
#: rows one method's parameter sweep may expand to
MAX_SWEEP_POINTS = 1_000
#: the device names a scenario file or ``--device`` may give (``cuda:N`` besides)
DEVICES = ("auto", "cpu", "cuda", "mps")

_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def describe(expected: Any) -> str:
    if isinstance(expected, tuple):
        if set(expected) == {int, float}:
            return "a number"
        return " or ".join(describe(t) for t in expected)
    return _TYPE_WORDS.get(expected, getattr(expected, "__name__", str(expected)))


def is_type(value: Any, expected: Any) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def got(value: Any) -> str:
    """``a list [1, 2, ...]``: the kind of a value and a short view of it."""
    if value is None:
        return "null"
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return shown(value)
    return f"{kind} {shown(value)}"


def expectation(spec: Param) -> str:
    if spec.choices is not None:
        return "one of " + ", ".join(map(str, spec.choices))
    text = describe(spec.value_type()) if spec.value_type() else "a value"
    if spec.min is not None:
        text += f" {'>' if spec.min_exclusive else '>='} {spec.min:g}"
    if spec.max is not None:
        text += f"{' and' if spec.min is not None else ''} <= {spec.max:g}"
    if spec.nullable:
        text += " (or null)"
    return text


def check(value: Any, spec: Param) -> tuple[Any, str | None]:
    """(the value as the component receives it, None) or (None, why it is refused).
    A number where a ``float`` is declared becomes a float; one too large for a float,
    or an integer too large for torch, is refused."""
    if value is None:
        return None, None if spec.nullable else f"expected {expectation(spec)}, got null"
    expected = spec.value_type()
    if expected is not None and not is_type(value, expected):
        return None, f"expected {expectation(spec)}, got {got(value)}"
    if spec.choices is not None and value not in spec.choices:
        hint = did_you_mean(str(value), map(str, spec.choices)) if isinstance(value, str) else ""
        return (
            None,
            f"expected one of {', '.join(map(str, spec.choices))}, got {shown(value)}{hint}",
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, None
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"expected a finite number, got {value}"
    if isinstance(value, int) and abs(value) > MAX_INT:
        return None, f"expected {expectation(spec)} of at most 2^63 - 1, got {got(value)}"
    if isinstance(value, float) and expected is int:
        return None, f"expected an integer, got {value}"
    low_bad = spec.min is not None and (
        value <= spec.min if spec.min_exclusive else value < spec.min
    )
    high_bad = spec.max is not None and value > spec.max
    if low_bad or high_bad:
        return None, f"expected {expectation(spec)}, got {value}"
    if expected == (int, float):
        value = float(value)  # |value| <= 2^63 - 1: always a finite float
    return value, None


def device_problem(name: Any) -> str | None:
    """Why ``name`` is not a device name of the right form (None when it is); whether
    the machine has that device is checked before a run (:mod:`fubench.preflight`)."""
    if isinstance(name, str) and (
        name in DEVICES
        or (
            name.startswith("cuda:")
            and name[5:].isascii()
            and name[5:].isdigit()
            and len(name) < 12
        )
    ):
        return None
    return f"expected {', '.join(DEVICES)} or cuda:N (N a GPU number), got {got(name)}"
