"""One progress display for tasks that run elsewhere: a bar over the rows to compute
(what is done, the rate and what is left, as :func:`fubench.progress.counter` shows it) and
the lines the tasks print, passed on through :func:`fubench.progress.say`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fubench.engine.tasks import RowDone
from fubench.progress import counter

if TYPE_CHECKING:  # pragma: no cover
    from fubench.engine.tasks import Emit, Event, Task


class Display:
    def __init__(self, tasks: list[Task], handle: Emit):
        self.rows = sum(len(t.labels) for t in tasks)
        self.labels = {(t.seed, label) for t in tasks for label in t.labels}
        self.forward = handle
        self.bar: Any = None

    def __enter__(self) -> Display:
        self.bar = counter(self.rows, desc=f"{self.rows} rows", unit="row")
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def handle(self, event: Event) -> None:
        self.forward(event)
        if isinstance(event, RowDone) and (event.seed, event.label) in self.labels:
            self.labels.discard((event.seed, event.label))
            self.bar.update(1)
