"""A (scenario, seed)'s result file while a run adds rows to it.

Rows arrive one at a time; after each, the file is rewritten atomically, so an
interrupted run keeps every finished row. Two runs may write into one results folder at
once (``--methods a`` beside ``--methods b``): every write takes the folder's lock,
re-reads the file and merges — the rows this run computed are its own, every other row
is the file's as it stands — so neither run loses the other's rows."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fubench.results import read_result, row_digest, row_order, write_json_atomic


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (no lock file is left behind)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class ResultFile:
    """The result of one (scenario, seed) as this run keeps it: ``record`` is the JSON
    object, ``path`` its file."""

    def __init__(self, path: Path, record: dict[str, Any]):
        self.path = path
        self.record = record
        #: labels of the rows this run stored (the file's other rows may change under it)
        self.computed: set[str] = set()

    @classmethod
    def open(
        cls,
        path: Path,
        config_hash: str,
        fresh: Callable[[], dict[str, Any]],
        adopt: Callable[[dict[str, Any]], None],
        say: Callable[[str], None],
    ) -> ResultFile:
        """The file at ``path`` when it was computed under ``config_hash`` (``adopt``
        brings its description up to this run), else a ``fresh()`` record."""
        previous = cls._read(path, say)
        if previous is not None and previous.get("config_hash") != config_hash:
            say(f"  {path} was computed under another configuration; starting it afresh")
            previous = None
        if previous is None:
            return cls(path, fresh())
        adopt(previous)
        return cls(path, previous)

    @staticmethod
    def _read(path: Path, say: Callable[[str], None] | None = None) -> dict[str, Any] | None:
        if not path.exists():
            return None
        try:
            return read_result(path)
        except (ValueError, OSError) as exc:
            if say is not None:
                say(f"  {path} is unreadable ({exc}); starting it afresh")
            return None

    @property
    def rows(self) -> dict[str, Any]:
        return self.record["methods"]

    def store(self, label: str, row: dict[str, Any], listed: list[str], reference: str) -> None:
        """Add (or replace) one row, with its digest, and rewrite the file, merged with
        what another run may have written meanwhile; ``listed`` orders the method rows."""
        self.computed.add(label)
        row = dict(row, digest=row_digest(self.record["config_hash"], self.record["seed"], row))
        with folder_lock(self.path.parent):
            on_disk = self._read(self.path)
            rows = dict(self.rows)
            if on_disk is not None and on_disk.get("config_hash") == self.record["config_hash"]:
                theirs = {k: v for k, v in on_disk["methods"].items() if k not in self.computed}
                rows.update(theirs)
                describe_both(self.record, on_disk)
            rows[label] = row
            self.record["methods"] = {k: rows[k] for k in row_order(rows, reference, listed)}
            write_json_atomic(self.path, self.record)


def describe_both(record: dict[str, Any], other: dict[str, Any]) -> None:
    """Let ``record``'s configuration also describe the methods and seeds ``other``
    (another run's version of the file) holds: a file's configuration lists every row's
    method and every seed it was run for."""
    mine = record["scenario"].setdefault("config", {})
    theirs = other.get("scenario", {}).get("config") or {}
    mine["methods"] = {**theirs.get("methods", {}), **mine.get("methods", {})}
    mine["seeds"] = sorted({*theirs.get("seeds", []), *mine.get("seeds", [])})
