"""Validation of a scenario file against the registered components' declarations."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any

from fubench.config.reader import read_yaml
from fubench.config.records import ComponentSpec, FederationConfig, MethodSpec, ScenarioConfig
from fubench.errors import ConfigError, UnknownNameError, did_you_mean
from fubench.params import Param, as_param
from fubench.plugins import get_registry
from fubench.records import ConfigContext
from fubench.registry import Category, Registry

SUPPORTED_VERSIONS = (1,)


def load_scenario(path: str | Path, registry: Registry | None = None) -> ScenarioConfig:
    """Read and validate a scenario file."""
    registry = registry or get_registry()
    return _Validator(str(path), registry).scenario(read_yaml(path))





_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               list: "a list", dict: "a mapping"}


def _describe(expected: Any) -> str:
    if isinstance(expected, tuple):
        if set(expected) == {int, float}:
            return "a number"
        return " or ".join(_describe(t) for t in expected)
    return _TYPE_WORDS.get(expected, getattr(expected, "__name__", str(expected)))


def _is_type(value: Any, expected: Any) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


class _Validator:
    def __init__(self, file: str, registry: Registry):
        self.file = file
        self.registry = registry

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.file, key, message)

    # -- generic helpers
    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_got(value)}")
        for k in value:
            if not isinstance(k, str):
                raise self.fail(key, f"keys must be strings, got {k!r}")
        return value

    def keys(self, data: dict[str, Any], key: str, allowed: list[str],
             required: list[str]) -> None:
        for k in data:
            if k not in allowed:
                raise self.fail(_join(key, k), f"unknown key{did_you_mean(k, allowed)}; "
                                f"allowed: {', '.join(sorted(allowed))}")
        for k in required:
            if k not in data:
                raise self.fail(_join(key, k), "missing required key")

    def value(self, value: Any, key: str, spec: Param) -> Any:
        if value is None:
            if spec.nullable:
                return None
            raise self.fail(key, f"expected {self.expectation(spec)}, got null")
        expected = spec.value_type()
        if expected is not None and not _is_type(value, expected):
            raise self.fail(key, f"expected {self.expectation(spec)}, got {_got(value)}")
        if spec.choices is not None and value not in spec.choices:
            raise self.fail(key, f"expected one of {', '.join(map(str, spec.choices))}, "
                            f"got {value!r}{did_you_mean(str(value), map(str, spec.choices))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise self.fail(key, f"expected a finite number, got {value}")
            low_bad = spec.min is not None and (
                value <= spec.min if spec.min_exclusive else value < spec.min)
            high_bad = spec.max is not None and value > spec.max
            if low_bad or high_bad:
                raise self.fail(key, f"expected {self.expectation(spec)}, got {value}")
        if isinstance(value, float) and expected == int:
            raise self.fail(key, f"expected an integer, got {value}")
        return float(value) if expected == (int, float) and not isinstance(value, bool) else value

    @staticmethod
    def expectation(spec: Param) -> str:
        if spec.choices is not None:
            return "one of " + ", ".join(map(str, spec.choices))
        text = _describe(spec.value_type()) if spec.value_type() else "a value"
        if spec.min is not None:
            text += f" {'>' if spec.min_exclusive else '>='} {spec.min:g}"
        if spec.max is not None:
            text += f"{' and' if spec.min is not None else ''} <= {spec.max:g}"
        if spec.nullable:
            text += " (or null)"
        return text

    def component_params(self, cls: type, given: dict[str, Any], key: str,
                         allow_sweep: bool = False,
                         reserved: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, list]]:
        declared = {k: as_param(v) for k, v in cls.parameters.items()}
        for k in given:
            if k not in declared:
                accepts = ", ".join(sorted(declared)) or "no parameters"
                raise self.fail(_join(key, k), f"unknown key{did_you_mean(k, declared)}; "
                                f"'{cls.name}' accepts: {accepts}")
        params: dict[str, Any] = {}
        sweeps: dict[str, list] = {}
        for name, spec in declared.items():
            if name not in given:
                if spec.required:
                    raise self.fail(_join(key, name),
                                    f"missing required key ({self.expectation(spec)})")
                params[name] = copy.deepcopy(spec.default)
                continue
            raw = given[name]
            if allow_sweep and isinstance(raw, list) and spec.value_type() is not list:
                if not raw:
                    raise self.fail(_join(key, name), "a sweep needs at least one value")
                sweeps[name] = [self.value(v, f"{_join(key, name)}[{i}]", spec)
                                for i, v in enumerate(raw)]
                params[name] = sweeps[name][0]
            else:
                params[name] = self.value(raw, _join(key, name), spec)
        return params, sweeps

    def lookup(self, category: Category[Any], name: Any, key: str) -> type:
        if not isinstance(name, str):
            raise self.fail(key, f"expected a name (string), got {_got(name)}")
        try:
            return category.get(name)
        except UnknownNameError as exc:
            raise self.fail(key, str(exc)) from None

    # -- sections
    def scenario(self, data: Any) -> ScenarioConfig:
        data = self.mapping(data, "(top level)") if data is not None else None
        if data is None:
            raise self.fail("", "the file is empty; expected a scenario mapping")
        top = ["version", "name", "description", "dataset", "model", "federation",
               "scenario", "methods", "metrics", "seeds", "device"]
        self.keys(data, "", top, ["version", "dataset", "model", "federation", "scenario",
                                  "methods"])
        version = data["version"]
        if not _is_type(version, int) or version not in SUPPORTED_VERSIONS:
            raise self.fail("version", f"expected one of {SUPPORTED_VERSIONS}, got {version!r}")
        name = data.get("name", Path(self.file).stem)
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise self.fail("name", f"expected a name of letters, digits, '_' and '-', got {name!r}")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"expected a string, got {_got(description)}")

        dataset_cls, dataset, test_fraction, split_seed, server = self.dataset(data["dataset"])
        model = self.component(self.registry.models, data["model"], "model")
        federation = self.federation(data["federation"])
        scenario = self.component(self.registry.kinds, data["scenario"], "scenario",
                                  name_key="kind")
        kind_cls = self.registry.kinds.get(scenario.name)
        context = ConfigContext(dataset_cls.n_classes, federation.clients,
                                dataset_cls.modality, dataset.name)
        for key, message in kind_cls.validate_config(scenario.params, context) or ():
            raise self.fail(_join("scenario", key), message)
        methods = self.methods(data["methods"])
        metrics = self.metrics(data.get("metrics"))
        seeds = self.seeds(data.get("seeds", [0, 1, 2]))
        device = data.get("device", "auto")
        if not isinstance(device, str) or not (
                device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")):
            raise self.fail("device", f"expected auto, cpu, cuda or cuda:N, got {device!r}")
        return ScenarioConfig(self.file, version, name, description, dataset, test_fraction,
                              split_seed, model, federation, scenario, methods, metrics,
                              seeds, device, *server)

    def component(self, category: Category[Any], data: Any, key: str,
                  name_key: str = "name") -> ComponentSpec:
        if isinstance(data, str):
            data = {name_key: data}
        data = self.mapping(data, key)
        if name_key not in data:
            raise self.fail(_join(key, name_key), "missing required key")
        cls = self.lookup(category, data[name_key], _join(key, name_key))
        given = {k: v for k, v in data.items() if k != name_key}
        params, _ = self.component_params(cls, given, key)
        return ComponentSpec(cls.name, params)

    def dataset(self, data: Any) -> tuple[type, ComponentSpec, float | None, int,
                                          tuple[float, str]]:
        if isinstance(data, str):
            data = {"name": data}
        data = self.mapping(data, "dataset")
        harness = {"test_fraction": Param(None, float, min=0.0, max=0.9, min_exclusive=True,
                                          nullable=True),
                   "split_seed": Param(0, int, min=0),
                   "server_fraction": Param(0.0, float, min=0.0, max=0.5),
                   "server_from": Param("train", str, choices=("train", "test"))}
        if "name" not in data:
            raise self.fail("dataset.name", "missing required key")
        cls = self.lookup(self.registry.datasets, data["name"], "dataset.name")
        test_fraction = self.value(data.get("test_fraction"), "dataset.test_fraction",
                                   harness["test_fraction"])
        split_seed = self.value(data.get("split_seed", 0), "dataset.split_seed",
                                harness["split_seed"])
        server = (self.value(data.get("server_fraction", 0.0), "dataset.server_fraction",
                             harness["server_fraction"]),
                  self.value(data.get("server_from", "train"), "dataset.server_from",
                             harness["server_from"]))
        if "server_from" in data and not server[0]:
            raise self.fail("dataset.server_from", "only used with server_fraction > 0")
        given = {k: v for k, v in data.items() if k not in ("name", *harness)}
        params, _ = self.component_params(cls, given, "dataset")
        return cls, ComponentSpec(cls.name, params), test_fraction, split_seed, server

    FEDERATION = {
        "clients": Param(None, int, min=1),  # required: checked by keys()
        "rounds": Param(None, int, min=1),  # required
        "local_epochs": Param(1, int, min=1),
        "client_fraction": Param(1.0, float, min=0.0, max=1.0, min_exclusive=True),
        "batch_size": Param(32, int, min=1),
        "lr": Param(0.01, float, min=0.0, min_exclusive=True),
        "momentum": Param(0.0, float, min=0.0, max=0.999),
        "weight_decay": Param(0.0, float, min=0.0),
        "record_history": Param("auto", (bool, str)),
        "history_dtype": Param("float32", str, choices=("float32", "float16")),
    }

    def federation(self, data: Any) -> FederationConfig:
        data = self.mapping(data, "federation")
        allowed = [*self.FEDERATION, "partition"]
        self.keys(data, "federation", allowed, ["clients", "rounds"])
        values = {k: self.value(data.get(k, spec.default), f"federation.{k}", spec)
                  for k, spec in self.FEDERATION.items()}
        if values["record_history"] not in (True, False, "auto"):
            raise self.fail("federation.record_history",
                            f"expected true, false or auto, got {values['record_history']!r}")
        partition = self.component(self.registry.partitioners, data.get("partition", "iid"),
                                   "federation.partition")
        return FederationConfig(partition=partition, **values)

    def methods(self, data: Any) -> list[MethodSpec]:
        if isinstance(data, list):
            for i, item in enumerate(data):
                if not isinstance(item, str):
                    raise self.fail(f"methods[{i}]", f"expected a method name, got {_got(item)}")
            if len(set(data)) != len(data):
                dup = next(m for m in data if data.count(m) > 1)
                raise self.fail("methods", f"method '{dup}' is listed twice")
            data = {name: {} for name in data}
        data = self.mapping(data, "methods")
        if not data:
            raise self.fail("methods", "expected at least one method")
        specs: list[MethodSpec] = []
        for name, params in data.items():
            key = f"methods.{name}"
            cls = self.lookup(self.registry.methods, name, key)
            params = {} if params is None else self.mapping(params, key)
            fixed, sweeps = self.component_params(cls, params, key, allow_sweep=True)
            specs.extend(_sweep_points(cls.name, fixed, sweeps))
        return specs

    def metrics(self, data: Any) -> list[str] | None:
        if data is None:
            return None
        if not isinstance(data, list) or not data:
            raise self.fail("metrics", f"expected a non-empty list of metric names, got {_got(data)}")
        for i, name in enumerate(data):
            self.lookup(self.registry.metrics, name, f"metrics[{i}]")
        return list(data)

    def seeds(self, data: Any) -> list[int]:
        if isinstance(data, int) and not isinstance(data, bool):
            data = [data]
        if not isinstance(data, list) or not data:
            raise self.fail("seeds", f"expected a non-empty list of integers, got {_got(data)}")
        for i, seed in enumerate(data):
            if not _is_type(seed, int) or seed < 0:
                raise self.fail(f"seeds[{i}]", f"expected an integer >= 0, got {seed!r}")
        if len(set(data)) != len(data):
            raise self.fail("seeds", "a seed is listed twice")
        return list(data)


def expand_method(cls: type, given: dict[str, Any], file: str, key: str,
                  registry: Registry) -> list[MethodSpec]:
    """The sweep points of a method named on the command line (given parameters only)."""
    validator = _Validator(file, registry)
    fixed, sweeps = validator.component_params(cls, given, key, allow_sweep=True)
    return _sweep_points(cls.name, fixed, sweeps)


def _sweep_points(name: str, fixed: dict[str, Any], sweeps: dict[str, list]) -> list[MethodSpec]:
    if not sweeps:
        return [MethodSpec(name, fixed)]
    points = []
    keys = list(sweeps)
    for combo in itertools.product(*(sweeps[k] for k in keys)):
        point = dict(zip(keys, combo))
        points.append(MethodSpec(name, {**fixed, **point}, point))
    return points


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _got(value: Any) -> str:
    if value is None:
        return "null"
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= 40 else shown[:37] + '...'}"
