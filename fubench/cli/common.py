"""What every command shares: exit codes and argument types."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE = 0, 1, 2


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(t) for t in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected seeds >= 0, got {text!r}")
    return seeds
