"""The ``fubench`` command line.

    fubench run FILE [--methods a,b] [--seeds 0,1] [--out DIR] [--device D] [--table FILE]
    fubench validate FILE...
    fubench list [methods|kinds|metrics|partitioners|datasets|models|scenarios [DIR]] [--full]
    fubench show NAME
    fubench plugins [--json]
    fubench table RESULTS... [-o FILE] [--all-points]
    fubench plot tradeoff RESULTS... -o FILE.png
    fubench plot cost RESULTS... -o FILE.png [--metric M] [--timed]
    fubench plot attention FILE [--seeds 0,1] [--images 8] [--methods a,b] [--results DIR]
        -o FILE.png
    fubench leaderboard RESULTS... -o FILE [--check] [--base DIR] [--plots DIR]
    fubench leaderboard --list-offline FILE... [--json]
    fubench quality FILE [--replicas K] [--seeds 0] [--methods a,b] [--out DIR]
    fubench verify RESULTS... [--seeds S] [--methods a,b] [--device D] [--jobs N]
    fubench submit SUBMISSION.yaml... [--results DIR]

Exit codes: 0 success; 1 a run finished but some row failed; 2 bad input (a scenario
file, an argument, an unknown name, a path that cannot be written, a device this machine
lacks, a missing data set), found before any training; 3 the machine failed a run that
had started (a disk filled up, a folder turned read-only); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM, handled like Ctrl-C: what finished is saved, one line); 141 the
output's reader left early. Every error is one line on stderr, never a traceback (a bug
in fubench itself still shows one).

Plugin code cannot end a command as a success: ``sys.exit``, ``os._exit`` and a
``KeyboardInterrupt`` it raises fail that plugin (a skipped plugin, a failed row, a
failed hook; :mod:`fubench.exits`); one that escapes every finer net ends the command
with one line and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fubench.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    one_line_errors,
    print_error,
)
from fubench.cli.info import cmd_list, cmd_plugins, cmd_show, cmd_validate
from fubench.cli.parser import build_parser
from fubench.cli.quality import cmd_quality
from fubench.cli.reports import cmd_leaderboard, cmd_plot, cmd_table
from fubench.cli.run import cmd_run
from fubench.cli.submit import cmd_submit
from fubench.cli.verify import cmd_verify
from fubench.errors import EnvironmentFailure, FubenchError, origin, os_error
from fubench.exits import (
    PluginExit,
    Terminated,
    failure_line,
    plugin_code,
    user_signals,
    users_interrupt,
)

COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "list": cmd_list,
    "show": cmd_show,
    "plugins": cmd_plugins,
    "table": cmd_table,
    "plot": cmd_plot,
    "leaderboard": cmd_leaderboard,
    "quality": cmd_quality,
    "verify": cmd_verify,
    "submit": cmd_submit,
}


def silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush of what is
    still buffered for the closed pipe does not print an error of its own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is no file (replaced, closed)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    one_line_errors(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already said on one line
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if args.version:
        from fubench import __version__

        print(f"fubench {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    with user_signals(), plugin_code():
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; every way it ends becomes an exit code."""
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:  # the reader has all it wanted: stop without a word
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except EnvironmentFailure as exc:
        print_error(str(exc))
        return EXIT_ENVIRONMENT
    except (FubenchError, ValueError) as exc:
        print_error(str(exc))
        return EXIT_USAGE
    except OSError as exc:  # a path given on the command line cannot be read or written
        print_error(os_error(exc))
        return EXIT_USAGE
    except Terminated:
        print("fubench: terminated (SIGTERM); results computed so far are saved", file=sys.stderr)
        return EXIT_TERMINATED
    except (KeyboardInterrupt, SystemExit, PluginExit) as exc:
        if users_interrupt(exc):
            print("fubench: interrupted; results computed so far are saved", file=sys.stderr)
            return EXIT_INTERRUPTED
        print_error(f"plugin code ended the command: {failure_line(exc)}{origin(exc)}")
        return EXIT_USAGE
