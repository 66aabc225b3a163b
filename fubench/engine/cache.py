"""On-disk cache of trained models (the original and the reference).

An entry is keyed by everything that determines the model: the resolved data set,
model, federation and scenario settings, the data fingerprint, the seed, the role, the
plugin versions and the engine version. Entries are written atomically and only after
training succeeded: failures are never cached. Several processes (``--jobs``, Ray
workers on shared storage) may use one cache: a lock per entry makes the first train it
and the others wait and reuse it. ``$FUBENCH_CACHE`` (default ``~/.cache/fubench/models``)
moves it; ``--no-cache`` bypasses it. Delete the folder to clean it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fubench.cache_dir import cache_root
from fubench.errors import one_line
from fubench.evaluation import RowInfo
from fubench.progress import say
from fubench.results import stable_hash

#: bump when training changes in a way that changes trained models (2: the seed tag of
#: FedAvg's client sampling; 3: CPU training in the reproducible mode, oneDNN off and
#: MKL strict, and rows count their work)
ENGINE_VERSION = 3
#: bump when the layout of an entry changes (3: a checksum of the state; timings kept
#: apart when the machine was contended)
ENTRY_FORMAT = 3


@dataclass
class CachedModel:
    """A cache entry: the model's state, its row info and how its history was stored."""

    state: dict[str, torch.Tensor]
    info: RowInfo
    history_dir: Path | None = None
    history_dtype: str | None = None
    #: hardware -> the fastest time measured there on a quiet machine
    timings: dict[str, float] = field(default_factory=dict)
    #: hardware -> the fastest time measured there while the machine was contended (used
    #: only where no quiet timing exists, and flagged)
    contended_timings: dict[str, float] = field(default_factory=dict)

    def add_timing(self, hardware: str, seconds: float, contended: bool) -> None:
        """Keep the fastest timing of each kind: on a shared machine the slower ones
        mostly measure the neighbours."""
        kept = self.contended_timings if contended else self.timings
        kept[hardware] = min(seconds, kept.get(hardware, seconds))


class ModelCache:
    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = root or cache_root()
        self.enabled = enabled

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        return stable_hash({"engine": ENGINE_VERSION, "format": ENTRY_FORMAT, **parts})

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def history_dir(self, key: str) -> Path:
        return self.root / f"{key}.history"

    # -- reading
    def get(self, key: str, need_history: bool = False) -> CachedModel | None:
        """The entry, or None when absent, unreadable (said and removed) or lacking a
        history that is needed."""
        path = self.path(key)
        if not self.enabled or not path.exists():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            entry = _entry(data, self.history_dir(key))
        except Exception as exc:  # a truncated or foreign file is a miss, not a crash
            self.discard(key, f"is unreadable ({one_line(exc)})")
            return None
        problem = state_problem(entry.state, data.get("checksum"))
        if problem:
            self.discard(key, problem)
            return None
        if entry.history_dir is not None and not _complete(entry):
            entry.history_dir = entry.history_dtype = None
        if need_history and entry.history_dir is None:
            return None
        return entry

    def discard(self, key: str, problem: str) -> None:
        """Remove an entry that cannot be used, saying why on one line (the model is
        trained again)."""
        say(f"fubench: cache entry {self.path(key)} {problem}; rebuilding it")
        with contextlib.suppress(OSError):
            self.path(key).unlink(missing_ok=True)

    # -- writing
    def put(self, key: str, entry: CachedModel) -> None:
        if not self.enabled:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        try:
            state = {k: v.detach().cpu() for k, v in entry.state.items()}
            torch.save(
                {
                    "state": state,
                    "checksum": state_checksum(state),
                    "info": entry.info.as_dict(),
                    "history_dtype": entry.history_dtype if entry.history_dir else None,
                    "timings": dict(entry.timings),
                    "contended_timings": dict(entry.contended_timings),
                },
                tmp,
            )
            os.replace(tmp, self.path(key))
        except BaseException:  # a full disk: leave no partial entry behind
            tmp.unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the entry's lock: one process trains a missing model, the others wait.

        The empty ``.KEY.lock`` file stays: removing it while another process waits on
        it would let a third lock a new file of the same name, and both would train."""
        if not self.enabled:
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{key}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def scratch_history(self, key: str) -> Path:
        """A fresh folder to record a history into, under the entry's lock; whatever a
        killed run left there is removed first. ``keep_history`` moves it into place."""
        scratch = self.root / f".{key}.history.tmp"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        return scratch

    def keep_history(self, key: str, scratch: Path) -> Path:
        final = self.history_dir(key)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(scratch, final)
        return final

    def sweep_stale(self) -> int:
        """Remove scratch files and folders that runs killed mid-write left behind (their
        entry's lock is free, so nobody is writing them); return how many."""
        if not self.enabled or not self.root.is_dir():
            return 0
        removed = 0
        for item in self.root.glob(".*.tmp"):
            key = item.name[1:].split(".", 1)[0]
            with open(self.root / f".{key}.lock", "a+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live run holds it
                try:
                    if item.is_dir():
                        shutil.rmtree(item, ignore_errors=True)
                    else:
                        item.unlink(missing_ok=True)
                    removed += 1
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        return removed


def _complete(entry: CachedModel) -> bool:
    """Whether the entry's history folder holds every round its model was trained for
    (said on one line when it does not: the history is then recorded again)."""
    folder = entry.history_dir
    if folder is None or not folder.is_dir():
        return False
    recorded = len(list(folder.glob("round_*.pt")))
    if recorded != entry.info.comm_rounds:
        say(
            f"fubench: cache entry {folder} holds {recorded} of {entry.info.comm_rounds} "
            f"rounds; recording it again"
        )
        return False
    return True


def _entry(data: Any, history_dir: Path) -> CachedModel:
    """A loaded file as an entry; ValueError when it has another shape."""
    if not isinstance(data, dict) or not {"state", "info"} <= data.keys():
        raise ValueError("not a fubench cache entry")
    state, info = data["state"], data["info"]
    if (
        not isinstance(state, dict)
        or not isinstance(info, dict)
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise ValueError("not a fubench cache entry")
    dtype = data.get("history_dtype")
    return CachedModel(
        state,
        RowInfo.from_dict(info),
        history_dir if dtype is not None else None,
        dtype,
        dict(data.get("timings") or {}),
        dict(data.get("contended_timings") or {}),
    )


def state_checksum(state: dict[str, torch.Tensor]) -> str:
    """A hash of a model state's names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def state_problem(state: dict[str, torch.Tensor], checksum: object) -> str | None:
    """Why a cached state cannot be used (None: it can): a checksum that does not
    match (the file was changed or damaged after it was written), or weights that are
    not finite."""
    if checksum != state_checksum(state):
        return "does not match its checksum (changed or damaged after it was written)"
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"holds non-finite values in '{name}'"
    return None
