"""One progress display for a run's tasks, wherever they run (this process, worker
processes, Ray): a whole-run line with an ETA that counts work, and one line per running
task — its seed, what it does, the round of the training it runs::

    backdoor_mnist:  35%|███▌   | 12/42 rows, 90/90 reference rounds, 3 min elapsed, ETA 5 min
      seed 1 finetune: round 2/5 (3/5 clients), 4 s elapsed, ETA 6 s
      seed 2 original: round 7/15, 31 s elapsed, ETA 35 s

On a terminal these are live bars; in a log or a pipe the same lines (the tasks' not
indented) are printed at most every ``FUBENCH_PROGRESS_INTERVAL`` seconds
(:func:`fubench.progress.interval`).

**The unit of work** is one round of reference training (a FedAvg round of the original
or the gold-standard model). The reference rounds still to train are known: ``rounds``
per model not in the cache (corrected when a seed's models are ready: a model found in
the cache after all costs nothing). A method row counts as the rounds its time is worth:
its wall time (running the method and measuring its row) divided by the time of one
reference round, both measured in this run on the workers — the rows of a method not yet
finished are estimated from that method's finished rows, else from all finished rows.
Before a row has finished (or a reference round has been timed), a row counts as
:data:`ROW_PRIOR` rounds. The ETA is the time since the tasks started working (their
data loaded) times the work left over the work done; it improves as rows finish."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from fubench import progress
from fubench.engine.tasks import Progress, RowDone, SetupBuilt, TaskDone

if TYPE_CHECKING:  # pragma: no cover
    from fubench.engine.tasks import Emit, Event, Task

#: what a method row counts as, in rounds of reference training, until rows finished:
#: on the leaderboard's scenarios a row took 1 to 5 rounds' time (its method and its
#: metrics), most about 2
ROW_PRIOR = 2.0


@dataclass
class Workload:
    """What a run computes, for its progress: the scenario's ``name``; per seed, the
    rounds of reference training expected (0 for a model the cache holds); the method
    of every row to compute, by (seed, row label)."""

    name: str
    reference_rounds: dict[int, int]
    rows: dict[tuple[int, str], str]


@dataclass
class Estimate:
    """The run's work in rounds of reference training, done and in all (see the module
    docstring)."""

    workload: Workload
    rounds_seen: dict[int, int] = field(default_factory=dict)  # per seed
    settled: set[int] = field(default_factory=set)  # seeds whose models are ready
    #: seconds per round of each reference training so far, by (task, training)
    round_seconds: dict[tuple[int, str], float] = field(default_factory=dict)
    rows_done: dict[tuple[int, str], float] = field(default_factory=dict)  # wall seconds

    def reference_round(self, event: Progress) -> None:
        step = event.step
        if step.unit != "round" or step.done == 0 or step.clients is not None:
            return
        self.rounds_seen[event.seed] = self.rounds_seen.get(event.seed, 0) + 1
        self.round_seconds[(event.task_id, step.desc)] = step.elapsed / step.done

    def seed_ready(self, seed: int) -> None:
        """The seed's models are trained or loaded: its reference rounds are what was
        seen (a model the cache held costs none)."""
        self.settled.add(seed)

    def row_done(self, seed: int, label: str, seconds: float | None) -> None:
        if (seed, label) in self.workload.rows:
            self.rows_done[(seed, label)] = seconds or 0.0

    # -- totals
    def reference(self) -> tuple[int, int]:
        """Reference rounds (done, in all)."""
        done = total = 0
        for seed, expected in self.workload.reference_rounds.items():
            seen = self.rounds_seen.get(seed, 0)
            done += seen
            total += seen if seed in self.settled else max(expected, seen)
        return done, total

    def work(self) -> tuple[float, float]:
        """Work (done, in all), in rounds of reference training."""
        per_round = statistics.fmean(self.round_seconds.values()) if self.round_seconds else None
        by_method: dict[str, list[float]] = {}
        for key, seconds in self.rows_done.items():
            by_method.setdefault(self.workload.rows[key], []).append(seconds)
        every = [s for seconds in by_method.values() for s in seconds]

        def rounds(seconds: float | None) -> float:
            return ROW_PRIOR if seconds is None or not per_round else seconds / per_round

        done_rows = sum(rounds(s) for s in self.rows_done.values())
        left_rows = 0.0
        for key, method in self.workload.rows.items():
            if key not in self.rows_done:
                known = by_method.get(method) or every
                left_rows += rounds(statistics.fmean(known) if known else None)
        ref_done, ref_total = self.reference()
        done = ref_done + done_rows
        return done, done + (ref_total - ref_done) + left_rows


class Display:
    """The run's progress, drawn from the events of its tasks; every event is passed on
    to ``handle`` (which stores rows and says lines)."""

    def __init__(
        self,
        tasks: list[Task],
        handle: Emit,
        workload: Workload,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.clock = clock
        self.forward = handle
        self.estimate = Estimate(workload)
        self.name = workload.name
        self.lines: dict[int, str] = {}  # what each running task does, by task id
        self.slots: dict[int, int] = {}  # the terminal line of each running task
        self.start = self.clock()
        #: when the first task started working (its data loaded): the rate of work is
        #: measured from here, not counting the workers' start-up
        self.working: float | None = None
        self.last_print = 0.0
        self.terminal = False
        self.bars: list[Any] = []

    def __enter__(self) -> Display:
        self.start = self.clock()
        self.last_print = self.start
        self.terminal = progress.on_terminal() and not progress.is_quiet()
        if self.terminal:
            self.bars.append(self._bar(0, "{desc}: {percentage:3.0f}%|{bar}| {summary}"))
            self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in reversed(self.bars):
            bar.close()
        self.bars.clear()
        worked = self.estimate.workload.rows or self.estimate.reference()[1]
        if exc[0] is None and worked:
            progress.say(f"{self.name}: done, {self.summary(final=True)}")

    def handle(self, event: Event) -> None:
        if isinstance(event, Progress):
            if self.working is None:
                self.working = self.clock()
            if event.reference:
                self.estimate.reference_round(event)
            self.lines[event.task_id] = event.step.line()
            self.slots.setdefault(event.task_id, self._free_slot())
        elif isinstance(event, SetupBuilt):
            self.estimate.seed_ready(event.seed)
        elif isinstance(event, RowDone):
            self.estimate.row_done(event.seed, event.label, event.seconds)
        elif isinstance(event, TaskDone):
            self.lines.pop(event.task_id, None)
            slot = self.slots.pop(event.task_id, None)
            if slot is not None and slot < len(self.bars):
                self.bars[slot].set_description_str("", refresh=False)
        self.forward(event)
        self._draw()

    # -- the lines
    def summary(self, final: bool = False) -> str:
        """``12/42 rows, 90/90 reference rounds, 3 min 10 s elapsed, ETA 5 min 50 s``."""
        rows = len(self.estimate.workload.rows)
        ref_done, ref_total = self.estimate.reference()
        elapsed = self.clock() - self.start
        parts = [f"{len(self.estimate.rows_done)}/{rows} rows"]
        parts.append(
            f"{ref_done}/{ref_total} reference rounds" if ref_total else "reference models cached"
        )
        parts.append(f"{progress.duration(elapsed)} elapsed")
        done, total = self.estimate.work()
        if not final and done > 0 and total > done and self.working is not None:
            working = self.clock() - self.working
            parts.append(f"ETA {progress.duration(working / done * (total - done))}")
        return ", ".join(parts)

    def percent(self) -> float:
        done, total = self.estimate.work()
        return 100.0 * done / total if total else 100.0

    def _draw(self) -> None:
        if progress.is_quiet():
            return
        if self.terminal:
            self._draw_bars()
            return
        now = self.clock()
        if now - self.last_print < progress.interval():
            return
        self.last_print = now
        lines = [f"{self.name}: {self.percent():.0f}% of the work, {self.summary()}"]
        lines += [self.lines[task] for task in sorted(self.slots, key=self.slots.get)]
        print("\n".join(lines), file=sys.stderr, flush=True)

    def _draw_bars(self) -> None:
        main = self.bars[0]
        main.n = round(self.percent() * 10)
        main.summary = self.summary()
        while len(self.bars) <= max(self.slots.values(), default=0):
            self.bars.append(self._bar(len(self.bars), "{desc}"))
        columns = progress.terminal_size()[0]
        for task, slot in self.slots.items():
            self.bars[slot].set_description_str(f"  {self.lines[task]}"[: columns - 1], False)
        for bar in self.bars:
            bar.refresh()

    def _bar(self, position: int, form: str) -> Any:
        columns, lines = progress.terminal_size()
        return _Line(
            total=1000,
            desc=self.name if position == 0 else "",
            bar_format=form,
            position=position,
            leave=False,
            file=sys.stderr,
            ncols=columns,
            nrows=lines,
            mininterval=0,
        )

    def _free_slot(self) -> int:
        taken = set(self.slots.values())
        return next(slot for slot in range(1, len(taken) + 2) if slot not in taken)


class _Line(tqdm):
    """A tqdm line whose format may show ``{summary}``: the whole-run counts and ETA."""

    summary = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        return {**super().format_dict, "summary": self.summary}
