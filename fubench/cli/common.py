"""What every command shares: exit codes, argument types and one-line usage errors."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

#: 0 success; 1 a run finished but some row failed; 2 bad input (a scenario file, an
#: argument, an unknown name, a path that cannot be written, a device this machine lacks,
#: a missing data set), found before any training; 3 the machine failed a run that had
#: started (a disk filled up, a folder turned read-only): what finished is saved, rerun
EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3
#: interrupted (Ctrl-C); what finished is saved
EXIT_INTERRUPTED = 130
#: the reader of the output went away (``fubench list | head``), as a shell reports SIGPIPE
EXIT_BROKEN_PIPE = 141


def csv_list(text: str) -> list[str]:
    """Comma-separated names: at least one, none twice."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise argparse.ArgumentTypeError(f"'{twice}' is listed twice")
    return names


def seed_list(text: str) -> list[int]:
    """Comma-separated seeds >= 0. A seed listed twice is an error, as in a scenario
    file: it would run the same seed twice and average it with itself."""
    try:
        seeds = [int(t) for t in (t.strip() for t in text.split(",")) if t]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text[:40]!r}") from None
    if not seeds or any(not 0 <= s < 2**63 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected seeds >= 0 and < 2^63, got {text[:40]!r}")
    twice = next((s for s in seeds if seeds.count(s) > 1), None)
    if twice is not None:
        raise argparse.ArgumentTypeError(f"seed {twice} is listed twice")
    return seeds


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` and its sub-commands report a usage error on one line (the
    message and where to read more) instead of the usage block and the message."""

    def error(self: argparse.ArgumentParser, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see {self.prog} --help)\n")

    parser.error = error.__get__(parser)  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                one_line_errors(sub)


def print_error(message: str) -> None:
    print(f"fubench: error: {' '.join(message.split())}", file=sys.stderr)
