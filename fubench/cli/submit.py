"""``fubench submit``: a community method onto the leaderboard (see
:mod:`fubench.submission`)."""

from __future__ import annotations

import argparse
import sys

from fubench.cli.common import EXIT_FAILED_ROWS, EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    from fubench import progress
    from fubench.submission import SubmissionError, read_submission, submit

    for file in args.files:  # every file is checked before anything runs
        read_submission(file)
    failed = 0
    for file in args.files:
        try:
            done = submit(file, args.results, say=progress.say)
        except SubmissionError as exc:
            failed += 1
            print(f"fubench: {exc}; nothing was added", file=sys.stderr)
            continue
        rows = ", ".join(f"{n} rows on {s}" for s, n in done["rows"].items())
        print(f"{file}: {done['package']} {done['version']} added ({rows})")
    return EXIT_FAILED_ROWS if failed else EXIT_OK
