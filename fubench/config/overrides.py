"""Settings from the command line, applied to a scenario file's mapping before it is
validated: ``--set KEY=VALUE`` (``--set federation.clients=10``, ``--set
methods.tis_reset.gamma=[0.1,0.3]``) and ``--metrics a,b``.

A value is read as YAML 1.2 by the strict reader the files use
(:mod:`fubench.config.yaml12`), then put at KEY in the file's mapping; the validator
then sees one mapping, so a setting is checked exactly like the file and a mistake is
the same one-line error, naming the file and the key, with the ``--set`` that caused it.

A run with settings is another scenario: it is named ``<name>+<8 hex digits>`` (a hash
of the settings), so its results go into a folder of their own and never mix with those
of the unmodified file, and the result records the settings (``scenario.overrides``).
``--metrics`` only adds columns: every row it computes is the row the file would give,
so it keeps the scenario's name."""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from fubench.config.values import got
from fubench.config.yaml12 import parse_yaml
from fubench.errors import ConfigError, shown

#: where a component may be written as its bare name, and the key that name goes under
SHORTHAND = {
    ("dataset",): "name",
    ("model",): "name",
    ("scenario",): "kind",
    ("federation", "partition"): "name",
}
#: a key: names (letters, digits, '_' and '-') joined by dots
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*")


def setting(text: str) -> tuple[str, str]:
    """An argparse type: ``KEY=VALUE`` as (key, the value's text)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (e.g. federation.clients=10), got {shown(text)}"
        )
    if not _KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(
            f"expected a key of dot-separated names before '=' (e.g. "
            f"methods.finetune.rounds), got {shown(key)}"
        )
    return key, value


def read_settings(settings: list[tuple[str, str]], file: str) -> dict[str, Any]:
    """{key: value} of ``--set`` arguments, each value read as YAML 1.2 (strictly); a key
    set twice is an error, as in a file."""
    values: dict[str, Any] = {}
    for key, text in settings:
        if key in values:
            raise ConfigError(file, key, f"--set gives {key} twice; give it once")
        try:
            values[key] = parse_yaml(text, file, key, lines=False)
        except ConfigError as exc:
            raise ConfigError(file, key, f"--set {key}={shown(text)}: {exc.message}") from None
    return values


def apply_settings(data: Any, values: Mapping[str, Any], file: str) -> Any:
    """A copy of the file's mapping ``data`` with each value put at its key; the
    components and methods a file wrote as bare names become mappings as needed."""
    if not values:
        return data
    if not isinstance(data, dict):
        return data  # the validator says what is wrong with the file itself
    data = copy.deepcopy(data)
    for key, value in values.items():
        path = key.split(".")
        node = data
        for depth in range(len(path) - 1):
            node = _child(node, path[: depth + 1], file, key)
        node[path[-1]] = copy.deepcopy(value)
    return data


def _child(node: dict[str, Any], path: list[str], file: str, key: str) -> dict[str, Any]:
    """The mapping at ``path`` (its last name inside ``node``), made when absent."""
    name = path[-1]
    value = node.get(name)
    shorthand = SHORTHAND.get(tuple(path))
    if value is None:
        value = {}
    elif isinstance(value, str) and shorthand is not None:
        value = {shorthand: value}  # `model: mnist_cnn` -> {name: mnist_cnn}
    elif tuple(path) == ("methods",) and isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            return value  # the validator names the item that is not a method name
        value = {item: {} for item in value}  # `methods: [a, b]` -> {a: {}, b: {}}
    if not isinstance(value, dict):
        where = ".".join(path)
        raise ConfigError(
            file, key, f"--set {key}: {where} is {got(value)}, not a mapping with keys"
        )
    node[name] = value
    return value


def add_metrics(data: Any, names: list[str], default_metrics: list[str] | None, file: str) -> Any:
    """A copy of ``data`` whose ``metrics`` list also holds ``names`` (``--metrics``):
    after the file's list, or after the kind's declared defaults when the file lists
    none. A name already listed stays where it is."""
    if not names or not isinstance(data, dict):
        return data
    data = dict(data)
    listed = data.get("metrics")
    if listed is None:
        if not default_metrics:
            raise ConfigError(
                file,
                "metrics",
                "--metrics needs the scenario's metrics: the file lists none and its kind "
                "declares no default_metrics; list them under metrics: in the file",
            )
        listed = list(default_metrics)
    if not isinstance(listed, list):
        return data  # the validator says what is wrong with it
    data["metrics"] = listed + [name for name in names if name not in listed]
    return data


def blame(exc: ConfigError, values: Mapping[str, Any], metrics: list[str] | None) -> ConfigError:
    """``exc`` with the ``--set`` or ``--metrics`` behind its key named, when one is."""
    if exc.message.startswith(("--set", "--metrics")):
        return exc
    for key, value in values.items():
        if _related(exc.key, key):
            return ConfigError(
                exc.file, exc.key, f"{exc.message} (from --set {key}={typed(value)})"
            )
    if metrics and _related(exc.key, "metrics"):
        return ConfigError(exc.file, exc.key, f"{exc.message} (from --metrics {','.join(metrics)})")
    return exc


def typed(value: Any, limit: int = 60) -> str:
    """A setting's value as one would type it: ``yes``, ``[0.1, 0.3]``, ``{}``."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _related(error_key: str, key: str) -> bool:
    """Whether an error at ``error_key`` lies at, under or above the setting ``key``
    (``methods.tis_reset.gamma[1]`` under ``methods.tis_reset``; ``methods`` above it)."""
    if not error_key:
        return False
    return any(
        a == b or a.startswith(b + ".") or a.startswith(b + "[")
        for a, b in ((error_key, key), (key, error_key))
    )


def suffix(values: Mapping[str, Any]) -> str:
    """``+<8 hex digits>``: what a scenario's name gets when settings change it."""
    text = json.dumps(sorted(values.items()), sort_keys=True, default=str)
    return "+" + hashlib.sha256(text.encode()).hexdigest()[:8]
