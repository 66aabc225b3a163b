"""The leaderboard as data: what its renderers show, decided once.

:mod:`fubench.report.leaderboard` computes the ranks, intervals and claims and fills a
:class:`Board`; :mod:`fubench.report.markdown` writes it as ``leaderboard/README.md``
and :mod:`fubench.report.html` as a static site. Every number and word is chosen here
(cells hold their displayed text), so the two renderers never disagree; they differ
only in markup. Text from result files stays raw here and is escaped by the renderers
(:mod:`fubench.report.markup`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fubench.report.markup import Inline


@dataclass(frozen=True)
class Cell:
    """One table cell as displayed, with what an interactive table needs to sort it."""

    text: str
    best: bool = False  # the best value of a ranked column (bold)
    sort: float | None = None  # the number to sort by; None sorts last
    #: a rank's 95% interval over the seeds, and the axis it is drawn on (normalised
    #: ranks: 0 the best, 1 the last)
    interval: tuple[float, float] | None = None
    scale: tuple[float, float] | None = None


@dataclass
class Row:
    label: str  # the row label (a method, a sweep point, original, the reference)
    method: str  # the method behind it (``tis_reset[gamma=0.5]`` -> ``tis_reset``)
    cells: list[Cell]
    reference: bool = False  # original or the gold standard: shown, never ranked


@dataclass
class Table:
    columns: list[str]
    rows: list[Row]
    label_column: int = 0  # the column that names the row

    def rows_of(self, method: str) -> list[Row]:
        return [row for row in self.rows if row.method == method]


@dataclass(frozen=True)
class Note:
    """A line under a table; ``about``: the row or method it concerns, if one."""

    text: Inline
    about: str | None = None


@dataclass(frozen=True)
class Plot:
    title: str
    file: Path  # where it lies
    href: str  # the link to it, relative to the board's base folder


@dataclass(frozen=True)
class ClaimView:
    """A paper's claim and what the seeds say about it."""

    id: str
    source: str  # where it comes from, with its note
    statement: str
    measured: str
    verdict: str  # one of fubench.report.claims.VERDICTS
    methods: tuple[str, ...] = ()  # the methods it names
    effect: str = "—"  # the effect with its 95% interval
    p_adjusted: str = "—"  # the adjusted p of "held" / "not held"


@dataclass
class Quality:
    """A scenario's forgetting-quality ε (``fubench quality``)."""

    title: str
    text: Inline
    table: Table
    notes: list[Inline]


@dataclass
class ScenarioView:
    name: str
    file: str | None  # the scenario file recorded in its results
    href: str | None  # the link to it from the board's base folder
    version: Any
    kind: str
    hashes: list[str]  # config hashes of its results
    seeds: list[int]
    description: str
    source: str  # where the data came from
    table: Table
    notes: list[Note]
    claims: list[ClaimView]
    plots: list[Plot]
    quality: Quality | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the resolved scenario
    #: the forgetting columns seed by seed (median and success rate), with its caption
    success: tuple[str, Table] | None = None
    #: each method against retraining at equal cost (:mod:`fubench.report.costmatch`)
    cost_match: tuple[str, Table] | None = None


@dataclass
class Provenance:
    files: int  # result files read
    items: list[tuple[str, str]]  # (what, value), e.g. ("git commit", "abc, def")


@dataclass
class Board:
    """The whole leaderboard."""

    sources: list[tuple[str, str]]  # (result folder as given, link to it)
    references: list[str]  # the gold standards' row labels
    legend: list[Inline]  # how to read the tables
    ranking_rules: Inline
    cost_rules: Inline
    ranking: Table  # one row per method, one column per scenario after the means
    plots: list[Plot]  # plots about every scenario
    claims_text: Inline  # how claims are tested, with the count per verdict
    scenarios: list[ScenarioView]
    provenance: Provenance
    #: every method against retraining at equal cost, scenario by scenario
    cost_match: tuple[str, Table] | None = None

    @property
    def claims(self) -> list[tuple[str, ClaimView]]:
        return [(s.name, c) for s in self.scenarios for c in s.claims]

    @property
    def methods(self) -> list[str]:
        """The methods in ranking order."""
        return [row.method for row in self.ranking.rows]
