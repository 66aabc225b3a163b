"""Claims a scenario states about its results — the orderings and values its papers
report — checked over the seeds by ``fubench table`` and the leaderboard.

In a scenario file::

    claims:
      - id: tis_backdoor_asr
        source: "TIS-Reset paper, Table 4: ASR 99.99 -> 10.14 ± 10.35"
        metric: asr
        row: tis_reset              # a method (its row as the table shows it) or a row label
        below: original             # or: above: ROW | near: VALUE | near_row: ROW
        margin: 10                  # optional, with below / above: by more than this
      - id: tis_class_nta
        source: "TIS-Reset paper, Table 1"
        metric: nta
        row: tis_reset
        near: 0.84                  # in the unit the table shows (percent metrics in %)
        tolerance: 0.16             # required with near / near_row
        note: "ResNet-18 in the paper, a small CNN here"   # optional

Every key is checked like the rest of the file: unknown keys, unknown metrics and rows,
a missing relation or tolerance are one-line errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fubench.errors import did_you_mean

RELATIONS = ("below", "above", "near", "near_row")
KEYS = ("id", "source", "metric", "row", *RELATIONS, "tolerance", "margin", "note")


@dataclass(frozen=True)
class Claim:
    """One checkable statement about a scenario's rows."""

    id: str
    source: str
    metric: str
    row: str
    relation: str  # one of RELATIONS
    other: str | None = None  # the row compared with (below / above / near_row)
    value: float | None = None  # near: the value, in the table's unit
    tolerance: float | None = None
    note: str = ""
    # below / above: the difference must exceed this (in the table's unit); a claim of a
    # large effect ("FedRecovery collapses") is not reproduced by a 0.1-point ordering
    margin: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Claim:
        return cls(**data)

    def statement(self) -> str:
        """The claim in words, e.g. "asr of ferrari below finetune"."""
        if self.relation in ("below", "above"):
            by = f" by > {self.margin:g}" if self.margin else ""
            return f"{self.metric} of {self.row} {self.relation} {self.other}{by}"
        if self.relation == "near":
            return f"{self.metric} of {self.row} = {self.value:g} ± {self.tolerance:g}"
        return f"{self.metric} of {self.row} = {self.other}'s ± {self.tolerance:g}"


def parse_claims(
    data: Any, fail: Callable[[str, str], Exception], metrics: list[str], rows: list[str]
) -> list[Claim]:
    """The ``claims`` section as :class:`Claim` records; ``fail(key, message)`` makes the
    one-line error. ``rows`` are the names a claim may compare (original, the methods,
    their sweep labels, the reference)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise fail("claims", "expected a list of claims")
    claims, seen = [], set()
    for i, item in enumerate(data):
        key = f"claims[{i}]"
        claim = _one(item, key, fail, metrics, rows)
        if claim.id in seen:
            raise fail(f"{key}.id", f"claim id '{claim.id}' is used twice")
        seen.add(claim.id)
        claims.append(claim)
    return claims


def _one(item: Any, key: str, fail, metrics: list[str], rows: list[str]) -> Claim:
    if not isinstance(item, dict):
        raise fail(key, "expected a mapping with id, source, metric, row and a relation")
    for k in item:
        if k not in KEYS:
            raise fail(
                f"{key}.{k}", f"unknown key{did_you_mean(str(k), KEYS)}; allowed: {', '.join(KEYS)}"
            )
    for k in ("id", "source", "metric", "row"):
        if not isinstance(item.get(k), str) or not item[k].strip():
            raise fail(f"{key}.{k}", "missing required key (a non-empty string)")
    if item["metric"] not in metrics:
        raise fail(
            f"{key}.metric",
            f"unknown metric '{item['metric']}'{did_you_mean(item['metric'], metrics)}",
        )
    _row(item["row"], f"{key}.row", fail, rows)
    given = [r for r in RELATIONS if r in item]
    if len(given) != 1:
        raise fail(
            key, f"expected exactly one of {', '.join(RELATIONS)}, got {', '.join(given) or 'none'}"
        )
    relation = given[0]
    other = value = tolerance = None
    if relation in ("below", "above", "near_row"):
        other = _row(item[relation], f"{key}.{relation}", fail, rows)
        if other == item["row"]:
            raise fail(f"{key}.{relation}", f"compares row '{other}' with itself; name another row")
    else:
        value = _number(item["near"], f"{key}.near", fail)
    if relation in ("near", "near_row"):
        if "tolerance" not in item:
            raise fail(f"{key}.tolerance", f"missing required key with {relation}")
        tolerance = _number(item["tolerance"], f"{key}.tolerance", fail)
        if tolerance <= 0:
            raise fail(f"{key}.tolerance", f"expected a number > 0, got {tolerance:g}")
    elif "tolerance" in item:
        raise fail(f"{key}.tolerance", f"only used with near or near_row, not {relation}")
    margin = 0.0
    if "margin" in item:
        if relation not in ("below", "above"):
            raise fail(f"{key}.margin", f"only used with below or above, not {relation}")
        margin = _number(item["margin"], f"{key}.margin", fail)
        if margin < 0:
            raise fail(f"{key}.margin", f"expected a number >= 0, got {margin:g}")
    note = item.get("note", "")
    if not isinstance(note, str):
        raise fail(f"{key}.note", "expected a string")
    return Claim(
        item["id"],
        item["source"],
        item["metric"],
        item["row"],
        relation,
        other,
        value,
        tolerance,
        note,
        margin,
    )


def _row(name: Any, key: str, fail, rows: list[str]) -> str:
    if not isinstance(name, str) or name not in rows:
        shown = name if isinstance(name, str) else repr(name)[:40]
        raise fail(
            key, f"unknown row '{shown}'{did_you_mean(str(shown), rows)}; rows: {', '.join(rows)}"
        )
    return name


def _number(value: Any, key: str, fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(key, f"expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise fail(key, "expected a finite number") from None
    if not math.isfinite(number):
        raise fail(key, "expected a finite number")
    return number
