"""What every command shares: exit codes, argument types and one-line usage errors."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

#: 0 success; 1 a run finished but some row failed; 2 bad input (a scenario file, an
#: argument, an unknown name, a path that cannot be written, a device this machine lacks,
#: a missing data set), found before any training; 3 the machine failed a run that had
#: started (a disk filled up, a folder turned read-only): what finished is saved, rerun
EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3
#: interrupted (Ctrl-C); what finished is saved
EXIT_INTERRUPTED = 130
#: terminated (SIGTERM, e.g. a job scheduler's): handled like Ctrl-C, as a shell reports it
EXIT_TERMINATED = 143
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


def whole_number(text: str) -> int:
    """Plain ASCII digits: ``1_0``, ``٣`` and ``+3`` are typos, not numbers here."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 100:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}")
    return int(text)


def count(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high`` (beyond: a typo)."""

    def parse(text: str) -> int:
        value = whole_number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high:,}, got {value:,}"
            )
        return value

    return parse


def seed_list(text: str) -> list[int]:
    """Comma-separated seeds >= 0. A seed listed twice is an error, as in a scenario
    file: it would run the same seed twice and average it with itself."""
    parts = [t.strip() for t in text.split(",")]
    if not text.strip() or "" in parts:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seeds with none empty, got {text[:40]!r}"
        )
    negative = next((t for t in parts if t.startswith("-")), None)
    if negative is not None:
        raise argparse.ArgumentTypeError(f"expected seeds >= 0, got {negative[:40]!r}")
    seeds = [whole_number(t) for t in parts]
    if any(s >= 2**63 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected seeds >= 0 and < 2^63, got {text[:40]!r}")
    twice = next((s for s in seeds if seeds.count(s) > 1), None)
    if twice is not None:
        raise argparse.ArgumentTypeError(f"seed {twice} is listed twice")
    return seeds


def device_name(text: str) -> str:
    """auto, cpu, cuda, mps or cuda:N (whether this machine has it is checked later)."""
    from fubench.config.values import device_problem

    problem = device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def path_name(text: str) -> str:
    """A file or folder name: not empty (an empty --out would write into the current
    folder without saying so)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return text


def probability(text: str) -> float:
    """A number from 0 to below 1 (the δ of (ε, δ)-unlearning)."""
    if not re.fullmatch(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+\.", text.strip()):
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}")
    value = float(text)
    if not 0 <= value < 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected a number from 0 to below 1, got {text}")
    return value


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


def load_changed(file: str, args: argparse.Namespace, registry: Any) -> Any:
    """The scenario ``file`` as the command's ``--set`` and ``--metrics`` change it."""
    from fubench.config.overrides import read_settings
    from fubench.config.validate import load_scenario

    settings = read_settings(getattr(args, "settings", None) or [], file)
    return load_scenario(file, registry, settings, getattr(args, "metrics", None))
