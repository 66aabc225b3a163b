"""The round history of a FedAvg run: the global model each round started from and every
selected client's update (its local result minus that global model), for history-based
methods such as FedRecovery. Kept on disk, one file per round, optionally in float16."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from fubench.fl.training import StateDict


def flatten(state: StateDict) -> torch.Tensor:
    """The floating-point entries of a state, concatenated in key order."""
    return torch.cat(
        [v.detach().reshape(-1).double() for v in state.values() if v.is_floating_point()]
    )


def unflatten(vector: torch.Tensor, like: StateDict) -> StateDict:
    """Inverse of :func:`flatten`; integer entries are copied from ``like``."""
    out, offset = {}, 0
    for k, v in like.items():
        if v.is_floating_point():
            out[k] = vector[offset : offset + v.numel()].reshape(v.shape).to(v.dtype)
            offset += v.numel()
        else:
            out[k] = v.clone()
    return out


@dataclass
class RoundRecord:
    round: int
    global_state: torch.Tensor  # flat, float32
    updates: dict[int, torch.Tensor]  # client -> flat update (local - global)
    sizes: dict[int, int]  # client -> samples it trained on


class RoundHistory:
    """Disk-backed history. ``record`` is the ``on_round`` callback of
    :func:`fubench.fl.training.fedavg`."""

    def __init__(self, directory: str | Path, dtype: torch.dtype = torch.float32):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype

    def record(
        self,
        r: int,
        global_state: StateDict,
        client_states: dict[int, StateDict],
        sizes: dict[int, int],
    ) -> None:
        start = flatten(global_state)
        payload = {
            "round": r,
            "global": start.to(self.dtype),
            "updates": {c: (flatten(s) - start).to(self.dtype) for c, s in client_states.items()},
            "sizes": dict(sizes),
        }
        tmp = self.directory / f".round_{r:05d}.tmp"
        torch.save(payload, tmp)
        os.chmod(tmp, 0o444)  # a record is never rewritten: read-only for the methods
        os.replace(tmp, self.directory / f"round_{r:05d}.pt")

    def reader(self) -> RoundHistory:
        """Another reader of the same records (each method gets its own: what one
        changes on its reader reaches no other; the records load afresh each time)."""
        return RoundHistory(self.directory, self.dtype)

    def __len__(self) -> int:
        return len(list(self.directory.glob("round_*.pt")))

    def __getitem__(self, r: int) -> RoundRecord:
        path = self.directory / f"round_{r:05d}.pt"
        if not path.exists():
            raise IndexError(r)
        data = torch.load(path, weights_only=True)
        return RoundRecord(
            data["round"],
            data["global"].float(),
            {c: u.float() for c, u in data["updates"].items()},
            data["sizes"],
        )

    def __iter__(self):
        return (self[r] for r in range(len(self)))

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("round_*.pt"))

    def round_bytes(self, r: int) -> int:
        """Bytes on disk of round ``r``'s record (for a method that keeps only some
        rounds, e.g. every Δt-th)."""
        path = self.directory / f"round_{r:05d}.pt"
        if not path.exists():
            raise IndexError(r)
        return path.stat().st_size
