"""``python -m fubench.testing [PLUGIN...]``: run the conformance kit from a shell, one
line per component; a plugin that cannot load is one line too, never a traceback.

It exits 0 only when every check ran and passed: a component whose check fails, a
plugin that failed to load, and plugin code that tries to end the process
(``sys.exit``, ``os._exit``, a ``KeyboardInterrupt``: a failed check, see
:mod:`fubench.exits`) make it exit 1. From a shell the checks run in a child process
that reports each check it begins and the end of the last; a child that ends without
that report (a plugin killed it, or ended it by a means nothing can catch) fails the
run, naming the check it was in — a plugin's CI never passes without its checks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fubench.errors import FubenchError
from fubench.exits import (
    failure_line,
    plugin_code,
    signals_ignored,
    user_signals,
    users_interrupt,
)
from fubench.registry import plugin_failures_unreported
from fubench.testing.kit import cases, shared_kit
from fubench.testing.world import ConformanceError

#: the file a child process reports its progress to (set by :func:`run_in_child`)
REPORT_VARIABLE = "FUBENCH_KIT_REPORT"
EXIT_INTERRUPTED = 130


def run(argv: list[str] | None = None) -> int:
    """Check and print one line per component; 0 only when every check ran and passed."""
    argv = sys.argv[1:] if argv is None else argv
    report = _Report(os.environ.get(REPORT_VARIABLE))
    with user_signals(), plugin_code():
        try:
            code = _check(argv, report)
        except BaseException as exc:
            if not users_interrupt(exc):
                raise
            print("fubench.testing: interrupted", file=sys.stderr)
            code = EXIT_INTERRUPTED
    report.line(f"end {code}")
    return code


def _check(argv: list[str], report: _Report) -> int:
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
        report.line(f"check {case}")
        start = time.perf_counter()
        try:
            case.check()
            verdict = "ok"
        except ConformanceError as exc:
            failed += 1
            verdict = "FAILED\n" + "\n".join(str(exc).splitlines()[1:])
        except BaseException as exc:  # plugin code that tried to end the kit
            if users_interrupt(exc):
                raise
            failed += 1
            verdict = f"FAILED\n  - {failure_line(exc)}"
        print(f"{str(case):<32} [{case.plugin}] {verdict} ({time.perf_counter() - start:.1f}s)")
    broken = [] if argv else [p for p in shared_kit(None).registry.plugins if p.problem]
    if broken:  # said by the loader: their checks could not run
        names = ", ".join(p.name for p in broken)
        print(f"fubench.testing: plugin(s) {names} failed to load: not checked", file=sys.stderr)
    return 1 if failed or broken else 0


class _Report:
    """Lines a child process leaves for its parent (nothing without a file)."""

    def __init__(self, path: str | None):
        self.path = path

    def line(self, text: str) -> None:
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text + "\n")


def run_in_child(argv: list[str] | None = None) -> int:
    """``python -m fubench.testing``: :func:`run` in a child process; its exit code
    when it reported its end, else 1 with one line naming the check it was in."""
    argv = sys.argv[1:] if argv is None else argv
    with tempfile.TemporaryDirectory(prefix="fubench-kit-") as folder:
        report = Path(folder) / "report"
        report.touch()
        env = {**os.environ, REPORT_VARIABLE: str(report)}
        command = [sys.executable, "-m", "fubench.testing", *argv]
        with signals_ignored():  # Ctrl-C reaches the child, which reports it
            code = subprocess.run(command, env=env).returncode
        lines = report.read_text(encoding="utf-8").splitlines()
    if lines and lines[-1] == f"end {code}":
        return code
    where = next((line[6:] for line in reversed(lines) if line.startswith("check ")), None)
    how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    during = f"while checking {where}" if where else "before any check ran"
    print(
        f"fubench.testing: error: the checks ended early ({how}) {during}: plugin code "
        f"ended the process; no check after it ran",
        file=sys.stderr,
    )
    return 1
