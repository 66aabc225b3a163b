"""Data sets: the data root, train/test splitting, fingerprints for provenance and cache
keys, an in-process cache so several seeds load a data set once, and whether a
scenario's data load here without network."""

from __future__ import annotations

import hashlib
import os
import weakref
from dataclasses import replace
from pathlib import Path

import torch

from fubench.config.spec import ScenarioConfig
from fubench.errors import DataUnavailable, FubenchError, os_error
from fubench.progress import quietly
from fubench.registry import Registry
from fubench.scenario import Dataset


def data_folder() -> Path:
    """``$FUBENCH_DATA``, else ``~/.cache/fubench/data`` (not created)."""
    env = os.environ.get("FUBENCH_DATA")
    return Path(env) if env else Path.home() / ".cache" / "fubench" / "data"


def data_root() -> Path:
    """The data folder, created when missing; one line when it cannot be."""
    root = data_folder()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FubenchError(
            f"FUBENCH_DATA={root}: the data folder cannot be created "
            f"({os_error(exc)}); set FUBENCH_DATA to a writable folder"
        ) from None
    return root


def split(data: Dataset, test_fraction: float, seed: int) -> Dataset:
    """Stratified train/test split of all the data set's samples (the TIS paper uses
    70/30). The split depends only on ``seed`` (``dataset.split_seed``), so every run
    seed sees the same test set."""
    x = data.x_train if data.x_test is None else torch.cat([data.x_train, data.x_test])
    y = data.y_train if data.y_test is None else torch.cat([data.y_train, data.y_test])
    g = torch.Generator().manual_seed(seed)
    test_parts, train_parts = [], []
    for label in torch.unique(y):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = int(round(len(idx) * test_fraction))
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train_idx = torch.cat(train_parts).sort().values
    test_idx = torch.cat(test_parts).sort().values
    return replace(
        data,
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_test=x[test_idx],
        y_test=y[test_idx],
        source=f"{data.source}; split {1 - test_fraction:.0%}/"
        f"{test_fraction:.0%} (split_seed {seed})",
    )


def reserve_for_server(data: Dataset, fraction: float, source: str, seed: int) -> Dataset:
    """Hold a stratified ``fraction`` of the training (``source="train"``, before any
    partition) or test split out as the server's unlabeled inputs ``x_server``: no
    client and no evaluation set ever holds them. Depends only on ``seed``
    (``dataset.split_seed``), so every run seed and every method sees the same ones."""
    x, y = (data.x_train, data.y_train) if source == "train" else (data.x_test, data.y_test)
    g = torch.Generator().manual_seed(seed + 7_919)  # apart from the train/test split's
    server_parts, keep_parts = [], []
    for label in torch.unique(y):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_server = int(round(len(idx) * fraction))
        server_parts.append(idx[:n_server])
        keep_parts.append(idx[n_server:])
    server_idx = torch.cat(server_parts).sort().values
    keep_idx = torch.cat(keep_parts).sort().values
    what = (
        f"; the server holds {len(server_idx)} unlabeled {source}-split samples "
        f"(server_fraction {fraction:g})"
    )
    kept = {f"x_{source}": x[keep_idx], f"y_{source}": y[keep_idx]}
    return replace(data, **kept, x_server=x[server_idx], source=data.source + what)


def shifted_server_inputs(data: Dataset, other: Dataset, seed: int) -> Dataset:
    """Give the server as many inputs of ``other`` (another data set: a shifted
    distribution) as its reserve holds, a stratified choice from ``other``'s training
    split that depends only on ``seed`` (``dataset.split_seed``); only the inputs."""
    if data.x_server is None:
        raise FubenchError("dataset.server_shifted: the server holds no reserve to match")
    if other.input_shape != data.input_shape:
        raise FubenchError(
            f"dataset.server_shifted: {other.name} inputs are shaped {other.input_shape}, "
            f"{data.name} inputs {data.input_shape}; expected the same shape"
        )
    count = len(data.x_server)
    g = torch.Generator().manual_seed(seed + 104_729)  # apart from the reserve's draw
    labels = other.y_train
    chosen = []
    for label in torch.unique(labels):
        idx = torch.nonzero(labels == label).flatten()
        share = round(count * len(idx) / len(labels))
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:share]])
    index = torch.cat(chosen)
    index = index[torch.randperm(len(index), generator=g)[:count]].sort().values
    what = f"; shifted server data: {len(index)} unlabeled {other.name} training inputs"
    return replace(data, x_server_shifted=other.x_train[index], source=data.source + what)


_FINGERPRINTS: dict[int, str] = {}


def fingerprint(data: Dataset) -> str:
    """A short hash of the tensors, so a cache never mixes two versions of the data
    (computed once per loaded data set: hashing a large one takes a while)."""
    key = id(data)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = _hash(data)
        weakref.finalize(data, _FINGERPRINTS.pop, key, None)
    return _FINGERPRINTS[key]


def _hash(data: Dataset) -> str:
    h = hashlib.sha256()
    tensors = [data.x_train, data.y_train, data.x_test, data.y_test]
    if data.x_server is not None:  # only then: data without a server keep their hash
        tensors.append(data.x_server)
    if data.x_server_shifted is not None:
        tensors.append(data.x_server_shifted)
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


_LOADED: dict[str, Dataset] = {}


def load(config: ScenarioConfig, registry: Registry) -> Dataset:
    """Load the scenario's data set, split it, and keep it for the process."""
    key = repr(
        (
            config.dataset.name,
            sorted(config.dataset.params.items()),
            config.test_fraction,
            config.split_seed,
            config.server_fraction,
            config.server_from,
            config.server_shifted,
        )
    )
    if key not in _LOADED:
        loader = registry.datasets.get(config.dataset.name)(**config.dataset.params)
        data = loader.load(data_root())
        if config.test_fraction is not None or data.x_test is None:
            data = split(data, config.test_fraction or 0.3, config.split_seed)
        if config.server_fraction:
            data = reserve_for_server(
                data, config.server_fraction, config.server_from, config.split_seed
            )
        if config.server_shifted:
            spec = config.server_shifted
            other = registry.datasets.get(spec.name)(**spec.params).load(data_root())
            data = shifted_server_inputs(data, other, config.split_seed)
        _LOADED[key] = data
    return _LOADED[key]


def loads_offline(config: ScenarioConfig, registry: Registry) -> tuple[bool, str]:
    """(whether the scenario's data set loads here without network, why not). Loaders
    that can download are asked not to, so the answer never depends on the network."""
    specs = [config.dataset] + ([config.server_shifted] if config.server_shifted else [])
    for spec in specs:  # the scenario's data set, and the server's shifted one
        cls = registry.datasets.get(spec.name)
        params = dict(spec.params)
        if "download" in cls.parameters:
            params["download"] = False
        try:
            with quietly():  # the answer is the point, not which offline source loaded
                cls(**params).load(data_root())
        except DataUnavailable as exc:
            return False, str(exc).splitlines()[0]
    return True, ""
