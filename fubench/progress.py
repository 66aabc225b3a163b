"""Progress on stderr, three ways:

* on a terminal, nested bars with elapsed time and ETA: the FedAvg rounds of a training
  and the clients of a round;
* when stderr is not a terminal (a log file, a pipe), one line at most every
  ``FUBENCH_PROGRESS_INTERVAL`` seconds (default 30), e.g.
  ``seed 0 original: round 7/15, 42 s elapsed, ETA 48 s``;
* nothing with ``--quiet``.

:func:`bar` wraps an iterable; what it returns also has ``clients(chosen)``, which wraps
one round's clients one level deeper (FedAvg calls it when it trains).

Inside :func:`reporting` (a task of ``fubench run``), :func:`bar` draws nothing: each
step goes to the reporter as a :class:`Step`, and the run's one display
(:mod:`fubench.executors.display`) shows it, whichever process the task runs in."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Step:
    """Where one level of progress stands, as a reporter receives it: ``done`` of
    ``total`` ``unit`` s of ``desc`` (``seed 0 original``: 7 of 15 rounds) after
    ``elapsed`` seconds, with ``clients`` (done, total) of the round running; or, when
    ``doing`` is set, what the task does between levels (``measuring``)."""

    desc: str
    unit: str = ""
    done: int = 0
    total: int | None = None
    elapsed: float = 0.0
    clients: tuple[int, int] | None = None
    doing: str = ""

    def line(self) -> str:
        """``seed 0 original: round 8/15 (3/5 clients), 42 s elapsed, ETA 48 s``, or
        ``seed 0 finetune: measuring``."""
        if self.doing:
            return f"{self.desc}: {self.doing}"
        done = float(self.done)
        where = f"{self.unit} {self.done}/{self.total or '?'}"
        if self.clients is not None and self.clients[1] and self.clients[0] < self.clients[1]:
            done += self.clients[0] / self.clients[1]
            where = (
                f"{self.unit} {self.done + 1}/{self.total or '?'} ({self.clients[0]}/"
                f"{self.clients[1]} {CLIENTS})"
            )
        text = f"{self.desc}: {where}, {duration(self.elapsed)} elapsed"
        if self.total and done > 0:
            text += f", ETA {duration(self.elapsed / done * (self.total - done))}"
        return text


Reporter = Callable[[Step], None]
#: where :func:`bar` reports its steps instead of drawing (inside :func:`reporting`)
_REPORTER: list[Reporter] = []


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


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Inside the block, :func:`bar` draws nothing and passes each step to
    ``reporter`` (a task of a run reports to the run's one display)."""
    _REPORTER.append(reporter)
    try:
        yield
    finally:
        _REPORTER.remove(reporter)


def report(step: Step) -> None:
    """Pass ``step`` to the reporter, when there is one (what a task does between
    levels: ``Step("seed 0 finetune", doing="measuring")``)."""
    if _REPORTER:
        _REPORTER[-1](step)


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


def terminal_size() -> tuple[int, int]:
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
    if _REPORTER:
        return _Reported(iterable, desc, unit, total, _REPORTER[-1])
    if on_terminal():
        columns, lines = terminal_size()
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


class _Reported:
    """Inside :func:`reporting`: counts items and passes each step to the reporter (the
    start, the end of every item and of every client of a round but the last, which
    ends the round)."""

    def __init__(
        self, iterable: Iterable[Any], desc: str, unit: str, total: int | None, to: Reporter
    ):
        self.iterable, self.desc, self.unit, self.total = iterable, desc, unit, total
        self.to = to
        self.done = 0
        self.start = time.monotonic()

    def step(self, clients: tuple[int, int] | None = None) -> Step:
        elapsed = time.monotonic() - self.start
        return Step(self.desc, self.unit, self.done, self.total, elapsed, clients)

    def __iter__(self) -> Iterator[Any]:
        self.start = time.monotonic()
        self.to(self.step())
        for item in self.iterable:
            yield item
            self.done += 1
            self.to(self.step())

    def clients(self, chosen: Iterable[Any]) -> Iterator[Any]:
        chosen = list(chosen)
        for i, client in enumerate(chosen):
            yield client
            if i + 1 < len(chosen):
                self.to(self.step((i + 1, len(chosen))))


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
    clients = (inner.done, inner.total) if inner is not None and inner.total else None
    return Step(main.desc, main.unit, main.done, main.total, now - main.start, clients).line()


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
