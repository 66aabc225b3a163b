"""The ``fubench`` command line.

    fubench run FILE [--methods a,b] [--seeds 0,1] [--out DIR] [--device D] [--table FILE]
    fubench validate FILE...
    fubench list [methods|scenarios|metrics|partitioners|datasets|models]
    fubench plugins [--json]
    fubench table RESULTS... [-o FILE] [--all-points]
    fubench plot tradeoff RESULTS... -o FILE.png
    fubench plot cost RESULTS... -o FILE.png [--metric M]
    fubench plot attention FILE [--seed N] [--methods a,b] [--results DIR] -o FILE.png
    fubench leaderboard RESULTS... -o FILE [--check] [--base DIR] [--plots DIR]
    fubench leaderboard --list-offline FILE... [--json]
    fubench quality FILE [--replicas K] [--seeds 0] [--methods a,b] [--out DIR]

Exit codes: 0 success, 1 a run finished but some row failed, 2 bad input (a scenario
file, an unknown name, a missing data set)."""

from __future__ import annotations

import sys
from typing import Sequence

from fubench.cli.common import EXIT_OK, EXIT_USAGE
from fubench.cli.info import cmd_list, cmd_plugins, cmd_validate
from fubench.cli.parser import build_parser
from fubench.cli.quality import cmd_quality
from fubench.cli.reports import cmd_leaderboard, cmd_plot, cmd_table
from fubench.cli.run import cmd_run
from fubench.errors import FubenchError

COMMANDS = {"run": cmd_run, "validate": cmd_validate, "list": cmd_list,
            "plugins": cmd_plugins, "table": cmd_table, "plot": cmd_plot,
            "leaderboard": cmd_leaderboard, "quality": cmd_quality}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from fubench import __version__
        print(f"fubench {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except (FubenchError, ValueError) as exc:
        print(f"fubench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fubench: interrupted; results computed so far are saved", file=sys.stderr)
        return 130
