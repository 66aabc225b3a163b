"""``python -m fubench.testing [PLUGIN...]``: run the conformance kit from a shell, one
line per component; a plugin that cannot load is one line too, never a traceback."""

from __future__ import annotations

import contextlib
import sys
import time

from fubench.errors import FubenchError
from fubench.registry import plugin_failures_unreported
from fubench.testing.kit import cases
from fubench.testing.world import ConformanceError


def run(argv: list[str] | None = None) -> int:
    """``python -m fubench.testing [PLUGIN...]``: check and print one line per component."""
    argv = sys.argv[1:] if argv is None else argv
    # asked about named plugins, the kit says itself which failed to load; without
    # names, the loader's line is all that names a broken plugin
    held = plugin_failures_unreported() if argv else contextlib.nullcontext()
    try:
        with held:
            found = cases(argv or None)
    except (ConformanceError, FubenchError) as exc:
        print(f"fubench.testing: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    failed = 0
    for case in found:
        start = time.perf_counter()
        try:
            case.check()
            verdict = "ok"
        except ConformanceError as exc:
            failed += 1
            verdict = "FAILED\n" + "\n".join(str(exc).splitlines()[1:])
        print(f"{str(case):<32} [{case.plugin}] {verdict} ({time.perf_counter() - start:.1f}s)")
    return 1 if failed else 0
