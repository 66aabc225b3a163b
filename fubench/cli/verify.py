"""``fubench verify``: run stored rows again from an empty cache and compare
(see :mod:`fubench.verify`)."""

from __future__ import annotations

import argparse
import sys
import time

from fubench.cli.common import EXIT_FAILED_ROWS, EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from fubench import progress
    from fubench.plugins import get_registry
    from fubench.verify import NOT_CHECKED, verify

    progress.set_quiet(args.quiet)
    start = time.perf_counter()
    verdicts = verify(
        args.results,
        get_registry(),
        seeds=args.seeds,
        methods=args.methods,
        device=args.device,
        jobs=args.jobs,
    )
    for verdict in verdicts:
        print(verdict.line())
    failed = [v for v in verdicts if not v.ok]
    unchecked = [v for v in verdicts if v.verdict == NOT_CHECKED]
    checked = len(verdicts) - len(unchecked)
    minutes = (time.perf_counter() - start) / 60
    summary = f"verify: {checked - len(failed)} of {checked} rows reproduce ({minutes:.1f} min)"
    if unchecked:
        summary += f"; {len(unchecked)} not checked (their methods are not installed)"
    print(summary, file=sys.stderr if failed else sys.stdout)
    return EXIT_FAILED_ROWS if failed else EXIT_OK
