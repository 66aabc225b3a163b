"""Checks before any training, so a run fails in seconds with one line rather than after
an hour with a traceback: the device exists on this machine, every folder and file the
run writes (``--out``, ``--table``, ``$FUBENCH_CACHE``, ``$FUBENCH_DATA``) can be
written, the data set loads, there are no more clients than training samples, and every
seed's partition and scenario can be built (a plugin's refusal, e.g. a trigger that does
not fit the images, is named by file and key).

A plugin names the parameter at fault by starting its ``ValueError`` message with it:
``raise ValueError("min_size: 400 samples per client ...")`` is reported as
``FILE: federation.partition.min_size: 400 samples per client ...``.

And after: when a started run stops because the machine failed (a disk filled up, a
folder turned read-only, memory ran out), :func:`environment_failure` says so on one line."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from fubench import data as datasets
from fubench.config.spec import ScenarioConfig
from fubench.config.values import device_problem
from fubench.errors import ConfigError, EnvironmentFailure, FubenchError, one_line, origin, os_error
from fubench.registry import Registry
from fubench.results import file_problem, result_path
from fubench.scenario import Dataset

#: a scratch file of an atomic result write older than this was left by a killed run
STALE_SECONDS = 300
#: less free space than this on a disk the run writes to counts as a full disk
FULL_BYTES = 16 * 2**20


class PreflightError(FubenchError):
    """A run would fail: bad input found before any training (exit 2)."""


# ------------------------------------------------------------------------- device
def device_unavailable(name: str) -> str | None:
    """Why this machine cannot run on device ``name`` (None when it can)."""
    if name in ("auto", "cpu"):
        return None
    if name == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            return "'mps' (Apple GPU) is not available on this machine; use cpu or auto"
        return None
    if not torch.cuda.is_available():
        return f"'{name}' was asked for but CUDA is not available here; use cpu or auto"
    count = torch.cuda.device_count()
    if name.startswith("cuda:") and int(name[5:]) >= count:
        return (
            f"'{name}' does not exist: this machine has {count} CUDA device"
            f"{'s' if count != 1 else ''} (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})"
        )
    return None


def check_device(config: ScenarioConfig, flag: str | None) -> str:
    """The device name the run uses, checked for form and for this machine."""
    if flag is not None:
        problem = device_problem(flag) or device_unavailable(flag)
        if problem:
            raise PreflightError(f"argument --device: {problem}")
        return flag
    problem = device_unavailable(config.device)
    if problem:
        raise ConfigError(config.file, "device", problem)
    return config.device


# -------------------------------------------------------------------------- paths
def folder_problem(path: Path) -> str | None:
    """Why a folder cannot be created or written at ``path`` (None when it can)."""
    path = Path(os.path.abspath(path))
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == path else f"sits under {existing}, which is"
        return f"{what} a file, not a folder"
    refused = None if os.access(existing, os.W_OK | os.X_OK) else "Permission denied"
    if refused is None:
        try:  # the permission bits do not tell everything (read-only mounts, root)
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as exc:
            refused = exc.strerror or one_line(exc)
    if refused:
        return (
            f"is not writable ({refused})"
            if existing == path
            else f"cannot be created: {existing} is not writable ({refused})"
        )
    return name_problem(path)


def name_problem(path: Path) -> str | None:
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            return f"has a name longer than 255 bytes ({part[:20]}...)"
    return None


def check_paths(
    out: str | Path | None,
    table: str | None,
    cache_root: Path | None,
    scenario: str,
    seeds: list[int],
    purpose: str = "evaluation",
) -> None:
    """Every folder and file the run writes, before anything is trained (``out`` None:
    a command that writes no results)."""
    folder = Path(out) / scenario if out is not None else None
    problem = folder_problem(folder) if folder is not None else None
    if problem:
        raise PreflightError(f"--out {out}: {folder} {problem}")
    for seed in seeds if folder is not None else ():
        result = result_path(Path(out), scenario, seed, purpose)
        if result.is_dir():
            raise PreflightError(f"--out {out}: {result} is a folder; it must be a result file")
        problem = file_problem(result) if os.path.lexists(result) else None
        if problem:  # a FIFO would hang the read, a link would send the write elsewhere
            raise PreflightError(f"--out {out}: {result} is {problem}; remove it")
    if table is not None:
        target = Path(table)
        if target.is_dir() or str(table).endswith(os.sep):
            raise PreflightError(
                f"--table {table}: is a folder; give a file name such as "
                f"{Path(table) / (scenario + '.md')}"
            )
        problem = folder_problem(target.parent)
        if problem:
            raise PreflightError(f"--table {table}: its folder {target.parent} {problem}")
        if target.exists() and not os.access(target, os.W_OK):
            raise PreflightError(f"--table {table}: is not writable")
        problem = name_problem(target)
        if problem:
            raise PreflightError(f"--table {table}: {problem}")
    if cache_root is not None:
        problem = folder_problem(cache_root)
        if problem:
            raise PreflightError(
                f"FUBENCH_CACHE={cache_root}: the model cache {problem}; "
                f"set FUBENCH_CACHE to a writable folder or use --no-cache"
            )
    root = datasets.data_folder()
    if not root.is_dir():  # it is created; an existing read-only one may hold the data
        problem = folder_problem(root)
        if problem:
            raise PreflightError(
                f"FUBENCH_DATA={root}: the data folder {problem}; set "
                f"FUBENCH_DATA to a writable folder"
            )


def sweep_results(out: str | Path, scenario: str) -> int:
    """Remove the scratch files of atomic result writes that a killed run left (older
    than :data:`STALE_SECONDS`: a write takes milliseconds); return how many."""
    folder = Path(out) / scenario
    if not folder.is_dir():
        return 0
    removed = 0
    for item in folder.glob(".seed_*.json.*.tmp"):
        try:
            if time.time() - item.stat().st_mtime > STALE_SECONDS and item.is_file():
                item.unlink()
                removed += 1
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


# ---------------------------------------------------------------------- data, sizes
def load_data(config: ScenarioConfig, registry: Registry) -> Dataset:
    """The scenario's data set; a folder the loader cannot write is one line."""
    try:
        return datasets.load(config, registry)
    except OSError as exc:
        raise PreflightError(
            f"{config.file}: dataset: {config.dataset.name} cannot be set up "
            f"under FUBENCH_DATA={datasets.data_folder()}: {os_error(exc)}"
        ) from None


def check_sizes(config: ScenarioConfig, plan: Any, data: Dataset) -> None:
    """Every client gets training data, every seed's partition and scenario build, and
    the model builds for the data."""
    from fubench.engine.job import Job
    from fubench.fl.training import generator

    with as_config_errors(config, "model", plan.registry.models.get(config.model.name)):
        Job(plan, data, config.seeds[0]).make_model("preflight")
    clients, n_train = config.federation.clients, len(data.y_train)
    if clients > n_train:
        raise ConfigError(
            config.file,
            "federation.clients",
            f"{clients:,} clients but the training set has {n_train:,} samples; "
            f"every client needs at least one",
        )
    for seed in config.seeds:
        with as_config_errors(config, "federation.partition", type(plan.partitioner)):
            parts = plan.partitioner.partition(data.y_train, clients, generator(seed, "partition"))
        empty = [c for c, part in enumerate(parts) if len(part) == 0]
        if empty:
            shown = ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else "")
            raise ConfigError(
                config.file,
                "federation.partition",
                f"{len(empty)} of {clients} clients get no training samples "
                f"under seed {seed} (clients {shown}); use fewer clients or "
                f"another partition",
            )
        with as_config_errors(config, "scenario", type(plan.kind)):
            Job(plan, data, seed).setup  # noqa: B018 - building it is the check


@contextlib.contextmanager
def as_config_errors(config: ScenarioConfig, section: str, cls: type) -> Iterator[None]:
    """Turn a plugin's exception inside the block into a one-line ConfigError naming the
    scenario file and the ``section`` whose component (``cls``) raised it."""
    try:
        yield
    except FubenchError:
        raise
    except Exception as exc:
        raise _config_error(config, section, cls, exc) from None


def _config_error(config: ScenarioConfig, section: str, cls: type, exc: Exception) -> ConfigError:
    if isinstance(exc, ValueError):
        message = " ".join(str(exc).split())
        head, sep, rest = message.partition(": ")
        if sep and head in getattr(cls, "parameters", {}):
            return ConfigError(config.file, f"{section}.{head}", rest)
    else:
        message = f"{one_line(exc)}{origin(exc)}"
    return ConfigError(config.file, section, f"{getattr(cls, 'name', cls.__name__)}: {message}")


def before_training(
    config: ScenarioConfig,
    registry: Registry,
    device_flag: str | None,
    out: str | Path | None,
    table: str | None,
    cache_root: Path | None,
) -> tuple[str, Dataset]:
    """Every check of this module, in order (device, paths, data, sizes); returns the
    device name and the loaded data. Loading notes are held: a refusal is the only line.
    ``out`` None: a command that writes no results (``plot attention``)."""
    from fubench import progress
    from fubench.engine.plan import Plan

    device = check_device(config, device_flag)
    check_paths(out, table, cache_root, config.name, config.seeds, config.purpose)
    if out is not None:
        sweep_results(out, config.name)
    with progress.shown_on_success():
        data = load_data(config, registry)
        check_sizes(config, Plan.from_config(config, registry, device), data)
    return device, data


# ------------------------------------------------------------------ after it started
def environment_failure(exc: BaseException, folders: list[Path]) -> EnvironmentFailure | None:
    """A one-line error when ``exc`` (escaping a started run) is the machine's fault: any
    OSError, running out of memory, or a write that failed on a full or read-only disk
    (torch reports those as RuntimeError). None for anything else: a bug shows itself."""
    after = "what finished is saved; rerun to resume"
    if isinstance(exc, OSError):
        return EnvironmentFailure(f"the run stopped: {os_error(exc)}; {after}")
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return EnvironmentFailure(
            f"the run ran out of memory ({one_line(exc)}); use a "
            f"smaller model, batch or federation; {after}"
        )
    if not isinstance(exc, RuntimeError):
        return None
    for folder in folders:
        existing = Path(os.path.abspath(folder))
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            free = shutil.disk_usage(existing).free
        except OSError:
            continue
        if free < FULL_BYTES:
            return EnvironmentFailure(
                f"the run stopped: the disk holding {folder} is full "
                f"({one_line(exc)}); free space, then {after}"
            )
        if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
            return EnvironmentFailure(
                f"the run stopped: {existing} is not writable ({one_line(exc)}); {after}"
            )
    return None
