"""Progress on stderr, three ways:

* on a terminal, nested bars with elapsed time and ETA: the methods of a seed, the FedAvg
  rounds of a training and the clients of a round;
* when stderr is not a terminal (a log file, a pipe), one line at most every
  ``FUBENCH_PROGRESS_INTERVAL`` seconds (default 30), e.g.
  ``seed 0 original: round 7/15, 42 s elapsed, ETA 48 s``;
* nothing with ``--quiet``.

:func:`bar` wraps an iterable; what it returns also has ``clients(chosen)``, which wraps
one round's clients one level deeper (FedAvg calls it when it trains)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

_QUIET = False
#: lines said inside :func:`held`, shown when it ends normally (None: not holding)
_HELD: list[str] | None = None
#: seconds between two progress lines when stderr is not a terminal
DEFAULT_INTERVAL = 30.0
INTERVAL_ENV = "FUBENCH_PROGRESS_INTERVAL"
#: the progress levels now running, outermost first (lines describe the innermost)
_ACTIVE: list[_Lines] = []
_LAST_LINE = [time.monotonic()]
#: the unit of the innermost level, a round's clients
CLIENTS = "clients"


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    return _QUIET


@contextlib.contextmanager
def quietly(quiet: bool = True) -> Iterator[None]:
    """No status lines inside the block (when ``quiet``)."""
    was = _QUIET
    set_quiet(was or quiet)
    try:
        yield
    finally:
        set_quiet(was)


@contextlib.contextmanager
def shown_on_success() -> Iterator[None]:
    """Status lines said inside the block are shown when it ends normally and dropped
    when it raises: a run refused during its checks prints the refusal alone, not the
    notes of loading that led up to it."""
    global _HELD
    outer, _HELD = _HELD, []
    try:
        yield
    except BaseException:
        _HELD = outer
        raise
    lines, _HELD = _HELD, outer
    for line in lines:
        say(line)


def interval() -> float:
    """Seconds between two progress lines off a terminal (``$FUBENCH_PROGRESS_INTERVAL``)."""
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _size() -> tuple[int, int]:
    """The terminal's (columns, lines). A terminal that reports 0 (a fresh
    pseudo-terminal) would make tqdm draw nothing, so fall back to $COLUMNS / $LINES,
    else 100 x 24."""
    try:
        size = tuple(os.get_terminal_size(sys.stderr.fileno()))
    except (AttributeError, OSError, ValueError):
        size = (0, 0)
    out = []
    for value, env, fallback in zip(size, ("COLUMNS", "LINES"), (100, 24)):
        if value <= 0:
            try:
                value = int(os.environ.get(env, "0"))
            except ValueError:
                value = 0
        out.append(value if value > 0 else fallback)
    return out[0], out[1]


def bar(
    iterable: Iterable[Any], desc: str = "", unit: str = "it", total: int | None = None
) -> Iterable[Any]:
    """``iterable`` with progress: a tqdm bar on a terminal, periodic lines elsewhere,
    nothing when quiet. The result also has ``clients(chosen)`` for a nested level."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if _QUIET:
        return _Silent(iterable)
    if on_terminal():
        columns, lines = _size()
        return _Bar(
            iterable,
            desc=desc,
            unit=unit,
            total=total,
            leave=False,
            file=sys.stderr,
            ncols=columns,
            nrows=lines,
            mininterval=0.2,
        )
    return _Lines(iterable, desc, unit, total)


def counter(total: int, desc: str = "", unit: str = "it") -> Any:
    """Progress advanced by hand (``update(n)``, then ``close()``), for work that
    finishes elsewhere, e.g. rows computed by worker processes: a tqdm bar on a
    terminal, periodic lines elsewhere, nothing when quiet."""
    if _QUIET:
        return _Silent(())
    if on_terminal():
        columns, lines = _size()
        return _Bar(
            total=total,
            desc=desc,
            unit=unit,
            leave=False,
            file=sys.stderr,
            ncols=columns,
            nrows=lines,
            mininterval=0.2,
        )
    return _CountedLines(desc, unit, total)


def say(message: str) -> None:
    """A status line on stderr, unless quiet (above the bars on a terminal)."""
    if _QUIET:
        return
    if _HELD is not None:
        _HELD.append(message)
        return
    if on_terminal():
        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------- the three ways


class _Silent:
    def __init__(self, iterable: Iterable[Any]):
        self.iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def clients(self, chosen: Iterable[Any]) -> Iterable[Any]:
        return chosen


class _Bar(tqdm):
    """A tqdm bar whose ``clients`` opens the bar of one round's clients below it."""

    def clients(self, chosen: Iterable[Any]) -> Iterable[Any]:
        return bar(chosen, desc="  clients", unit=CLIENTS)


class _Lines:
    """Off a terminal: counts items and prints a line when the interval has passed."""

    def __init__(self, iterable: Iterable[Any], desc: str, unit: str, total: int | None):
        self.iterable, self.desc, self.unit, self.total = iterable, desc, unit, total
        self.done = 0
        self.start = time.monotonic()

    def __iter__(self) -> Iterator[Any]:
        self.start = time.monotonic()
        _ACTIVE.append(self)
        try:
            for item in self.iterable:
                yield item
                self.done += 1
                if self.unit != CLIENTS or self.done != self.total:  # the round ticks next
                    _tick()
        finally:
            _ACTIVE.remove(self)

    def clients(self, chosen: Iterable[Any]) -> Iterable[Any]:
        return bar(chosen, desc=self.desc, unit=CLIENTS)


class _CountedLines(_Lines):
    """Periodic lines for a :func:`counter`: active from creation to ``close``."""

    def __init__(self, desc: str, unit: str, total: int | None):
        super().__init__((), desc, unit, total)
        _ACTIVE.append(self)

    def update(self, n: int = 1) -> None:
        self.done += n
        _tick()

    def close(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)


def _tick() -> None:
    now = time.monotonic()
    if now - _LAST_LINE[0] < interval() or not _ACTIVE:
        return
    _LAST_LINE[0] = now
    print(progress_line(now), file=sys.stderr, flush=True)


def progress_line(now: float | None = None) -> str:
    """The line describing the innermost running level, e.g. ``seed 0 original: round
    7/15, 42 s elapsed, ETA 48 s`` (with the current round's clients when they run)."""
    now = time.monotonic() if now is None else now
    levels = [p for p in _ACTIVE if p.unit != CLIENTS] or _ACTIVE
    main = levels[-1]
    inner = _ACTIVE[-1] if _ACTIVE[-1] is not main else None
    done = float(main.done)
    if inner is not None and inner.total and inner.done < inner.total:
        done += inner.done / inner.total
        where = (
            f"{main.unit} {main.done + 1}/{main.total or '?'} ({inner.done}/"
            f"{inner.total} {inner.unit})"
        )
    else:
        where = f"{main.unit} {main.done}/{main.total or '?'}"
    elapsed = now - main.start
    text = f"{main.desc}: {where}, {duration(elapsed)} elapsed"
    if main.total and done > 0:
        text += f", ETA {duration(elapsed / done * (main.total - done))}"
    return text


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
