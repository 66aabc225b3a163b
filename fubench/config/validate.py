"""Validation of a scenario file against the registered components' declarations."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fubench.config import overrides
from fubench.config.claims import parse_claims
from fubench.config.spec import (
    ComponentSpec,
    FederationConfig,
    MethodSpec,
    ScenarioConfig,
    label_value,
)
from fubench.config.values import (
    MAX_CLIENTS,
    MAX_INT,
    MAX_SWEEP_POINTS,
    check,
    device_problem,
    expectation,
    got,
    is_type,
)
from fubench.config.yaml12 import read_yaml
from fubench.errors import (
    ConfigError,
    FubenchError,
    UnknownNameError,
    did_you_mean,
    one_line,
    origin,
    shown,
)
from fubench.params import ConfigContext, Param, as_param
from fubench.plugins import get_registry
from fubench.registry import Components, Registry
from fubench.results import ORIGINAL

SUPPORTED_VERSIONS = (1,)


def load_scenario(
    path: str | Path,
    registry: Registry | None = None,
    settings: Mapping[str, Any] | None = None,
    metrics: list[str] | None = None,
) -> ScenarioConfig:
    """Read and validate a scenario file. ``settings`` ({key: value}, ``--set``) are put
    into the file's mapping and ``metrics`` (``--metrics``) added to its list before it
    is validated (:mod:`fubench.config.overrides`): a mistake in them is the same
    one-line error as in the file, naming what set it. Settings rename the scenario
    ``<name>+<hash>`` and are recorded in ``config.overrides``."""
    registry = registry or get_registry()
    file, values = str(path), dict(settings or {})
    data = overrides.apply_settings(read_yaml(path), values, file)
    try:
        if metrics:
            data = overrides.add_metrics(data, metrics, _kind_defaults(data, registry), file)
        config = _Validator(file, registry).scenario(data)
    except ConfigError as exc:
        raise overrides.blame(exc, values, metrics) from None
    if values:
        config.name += overrides.suffix(values)
        config.overrides = values
    return config


def _kind_defaults(data: Any, registry: Registry) -> list[str] | None:
    """The default metrics the scenario's kind declares, when the file names a kind
    that is installed (else the validator says what is wrong)."""
    scenario = data.get("scenario") if isinstance(data, dict) else None
    name = scenario.get("kind") if isinstance(scenario, dict) else scenario
    if not isinstance(name, str) or name not in registry.kinds:
        return None
    return list(registry.kinds.get(name).default_metrics) or None


def apply_overrides(
    config: ScenarioConfig,
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    device: str | None = None,
    registry: Registry | None = None,
    tuning: bool = False,
) -> ScenarioConfig:
    """A copy of ``config`` with the command line's choices: ``--methods`` may name
    methods the file does not list (they run with their defaults); ``tuning`` runs the
    file's tuning seeds (or ``seeds``) into tuning result files."""
    new = copy.copy(config)
    if tuning:
        if seeds is None and not config.tuning_seeds:
            raise ConfigError(
                config.file,
                "tuning_seeds",
                "--tuning needs tuning seeds: list "
                "them in the file (tuning_seeds: [100, 101, 102]) or give --seeds",
            )
        new.purpose, new.seeds = "tuning", list(seeds or config.tuning_seeds)
    elif seeds is not None:
        new.seeds = seeds
    if device is not None:
        new.device = device
    if methods is not None:
        registry = registry or get_registry()
        keep: list[MethodSpec] = []
        for name in methods:
            listed = [m for m in config.methods if m.name == name]
            if listed:
                keep.extend(listed)
                continue
            cls = registry.methods.get(name)  # raises with "did you mean"
            keep.extend(expand_method(cls, {}, config.file, f"methods.{name}", registry))
        new.methods = keep
    return new


class _Validator:
    def __init__(self, file: str, registry: Registry):
        self.file = file
        self.registry = registry

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.file, key, message)

    # -- generic helpers
    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {got(value)}")
        for k in value:
            if not isinstance(k, str):
                raise self.fail(key, f"keys must be strings, got {got(k)}")
        return value

    def keys(self, data: dict[str, Any], key: str, allowed: list[str], required: list[str]) -> None:
        for k in data:
            if k not in allowed:
                raise self.fail(
                    _join(key, k),
                    f"unknown key{did_you_mean(k, allowed)}; allowed: {', '.join(sorted(allowed))}",
                )
        for k in required:
            if k not in data:
                raise self.fail(_join(key, k), "missing required key")

    def value(self, value: Any, key: str, spec: Param) -> Any:
        checked, problem = check(value, spec)
        if problem:
            raise self.fail(key, problem)
        return checked

    expectation = staticmethod(expectation)

    def component_params(
        self,
        cls: type,
        given: dict[str, Any],
        key: str,
        allow_sweep: bool = False,
        reserved: tuple[str, ...] = (),
    ) -> tuple[dict[str, Any], dict[str, list]]:
        declared = {k: as_param(v) for k, v in cls.parameters.items()}
        for k in given:
            if k not in declared:
                accepts = ", ".join(sorted(declared)) or "no parameters"
                raise self.fail(
                    _join(key, k),
                    f"unknown key{did_you_mean(k, declared)}; '{cls.name}' accepts: {accepts}",
                )
        params: dict[str, Any] = {}
        sweeps: dict[str, list] = {}
        for name, spec in declared.items():
            if name not in given:
                if spec.required:
                    raise self.fail(
                        _join(key, name), f"missing required key ({self.expectation(spec)})"
                    )
                params[name] = copy.deepcopy(spec.default)
                continue
            raw = given[name]
            if allow_sweep and isinstance(raw, list) and spec.value_type() is not list:
                if not raw:
                    raise self.fail(_join(key, name), "a sweep needs at least one value")
                if len(raw) > MAX_SWEEP_POINTS:
                    raise self.fail(
                        _join(key, name),
                        f"a sweep of {len(raw):,} values; at most {MAX_SWEEP_POINTS:,}",
                    )
                sweeps[name] = [
                    self.value(v, f"{_join(key, name)}[{i}]", spec) for i, v in enumerate(raw)
                ]
                self.no_repeats(
                    [label_value(v) for v in sweeps[name]],
                    _join(key, name),
                    "value",
                    "its row would be the same as the earlier one's",
                )
                params[name] = sweeps[name][0]
            else:
                params[name] = self.value(raw, _join(key, name), spec)
        points = math.prod(len(v) for v in sweeps.values())
        if points > MAX_SWEEP_POINTS:
            raise self.fail(
                key,
                f"the sweep expands to {points:,} rows ("
                f"{' x '.join(str(len(v)) for v in sweeps.values())}); "
                f"at most {MAX_SWEEP_POINTS:,}",
            )
        return params, sweeps

    def lookup(self, category: Components[Any], name: Any, key: str) -> type:
        if not isinstance(name, str):
            raise self.fail(key, f"expected a name (string), got {got(name)}")
        try:
            return category.get(name)
        except UnknownNameError as exc:
            raise self.fail(key, str(exc)) from None

    # -- sections
    def scenario(self, data: Any) -> ScenarioConfig:
        data = self.mapping(data, "(top level)") if data is not None else None
        if data is None:
            raise self.fail("", "the file is empty; expected a scenario mapping")
        top = [
            "version",
            "name",
            "description",
            "dataset",
            "model",
            "federation",
            "scenario",
            "methods",
            "metrics",
            "seeds",
            "tuning_seeds",
            "device",
            "claims",
        ]
        self.keys(
            data, "", top, ["version", "dataset", "model", "federation", "scenario", "methods"]
        )
        version = data["version"]
        if not is_type(version, int) or version not in SUPPORTED_VERSIONS:
            raise self.fail(
                "version", f"expected one of {SUPPORTED_VERSIONS}, got {shown(version)}"
            )
        name = data.get("name", Path(self.file).stem)
        if (
            not isinstance(name, str)
            or not name.replace("_", "").replace("-", "").isalnum()
            or len(name) > 100
        ):
            raise self.fail(
                "name",
                f"expected a name of at most 100 letters, digits, '_' and '-', got {shown(name)}",
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"expected a string, got {got(description)}")

        dataset_cls, dataset, test_fraction, split_seed, server = self.dataset(data["dataset"])
        model = self.component(self.registry.models, data["model"], "model")
        federation = self.federation(data["federation"])
        scenario = self.component(
            self.registry.kinds, data["scenario"], "scenario", name_key="kind"
        )
        kind_cls = self.registry.kinds.get(scenario.name)
        context = ConfigContext(
            dataset_cls.n_classes, federation.clients, dataset_cls.modality, dataset.name
        )
        self.plugin_checks(dataset_cls, dataset.params, context, "dataset")
        self.plugin_checks(
            self.registry.partitioners.get(federation.partition.name),
            federation.partition.params,
            context,
            "federation.partition",
        )
        self.plugin_checks(kind_cls, scenario.params, context, "scenario")
        self.plugin_checks(self.registry.models.get(model.name), model.params, context, "model")
        methods = self.methods(data["methods"], context)
        metrics = self.metrics(data.get("metrics"))
        seeds = self.seeds(data.get("seeds", [0, 1, 2]))
        tuning_seeds = (
            self.seeds(data["tuning_seeds"], "tuning_seeds") if "tuning_seeds" in data else []
        )
        shared = sorted(set(seeds) & set(tuning_seeds))
        if shared:
            raise self.fail(
                "tuning_seeds",
                f"seed {shared[0]} is also an evaluation seed; a setting chosen on a seed "
                f"must not be reported on it",
            )
        device = data.get("device", "auto")
        problem = device_problem(device)
        if problem:
            raise self.fail("device", problem)
        claims = parse_claims(
            data.get("claims"), self.fail, self.registry.metrics.names(), self.claim_rows(methods)
        )
        if metrics is not None:  # else the kind's defaults, known once it is built
            self.claims_shown(claims, metrics, methods)
        server_fraction, server_from, server_shifted = server
        return ScenarioConfig(
            file=self.file,
            version=version,
            name=name,
            description=description,
            dataset=dataset,
            test_fraction=test_fraction,
            split_seed=split_seed,
            model=model,
            federation=federation,
            scenario=scenario,
            methods=methods,
            metrics=metrics,
            seeds=seeds,
            device=device,
            claims=claims,
            server_fraction=server_fraction,
            server_from=server_from,
            server_shifted=server_shifted,
            tuning_seeds=tuning_seeds,
        )

    def claims_shown(
        self, claims: list[Any], metrics: list[str], methods: list[MethodSpec]
    ) -> None:
        """Each claim's metric is one the rows get: listed, reported by a method, or one
        every row gets (a claim on anything else could never be tested)."""
        shown = self.registry.row_metrics(metrics, [spec.name for spec in methods])
        for i, claim in enumerate(claims):
            if claim.metric not in shown:
                raise self.fail(
                    f"claims[{i}].metric",
                    f"'{claim.metric}' is not among the scenario's metrics; add it to metrics:",
                )

    def claim_rows(self, methods: list[MethodSpec]) -> list[str]:
        """The rows a claim may name: original, each method and sweep point, the reference."""
        rows = [ORIGINAL]
        for spec in methods:
            rows += [
                name for name in dict.fromkeys((spec.name, spec.label)) if name not in rows
            ]  # a method without a sweep: name == label
        try:
            reference = self.registry.reference_name
        except FubenchError:  # no gold standard installed: the runner says so
            return rows
        return rows if reference in rows else rows + [reference]

    def component(
        self, category: Components[Any], data: Any, key: str, name_key: str = "name"
    ) -> ComponentSpec:
        if isinstance(data, str):
            data = {name_key: data}
        data = self.mapping(data, key)
        if name_key not in data:
            raise self.fail(_join(key, name_key), "missing required key")
        cls = self.lookup(category, data[name_key], _join(key, name_key))
        given = {k: v for k, v in data.items() if k != name_key}
        params, _ = self.component_params(cls, given, key)
        return ComponentSpec(cls.name, params)

    def dataset(
        self, data: Any
    ) -> tuple[type, ComponentSpec, float | None, int, tuple[float, str, ComponentSpec | None]]:
        if isinstance(data, str):
            data = {"name": data}
        data = self.mapping(data, "dataset")
        harness = {
            "test_fraction": Param(
                None, float, min=0.0, max=0.9, min_exclusive=True, nullable=True
            ),
            "split_seed": Param(0, int, min=0),
            "server_fraction": Param(0.0, float, min=0.0, max=0.5),
            "server_from": Param("train", str, choices=("train", "test")),
        }
        if "name" not in data:
            raise self.fail("dataset.name", "missing required key")
        cls = self.lookup(self.registry.datasets, data["name"], "dataset.name")
        test_fraction = self.value(
            data.get("test_fraction"), "dataset.test_fraction", harness["test_fraction"]
        )
        split_seed = self.value(
            data.get("split_seed", 0), "dataset.split_seed", harness["split_seed"]
        )
        server = (
            self.value(
                data.get("server_fraction", 0.0),
                "dataset.server_fraction",
                harness["server_fraction"],
            ),
            self.value(
                data.get("server_from", "train"), "dataset.server_from", harness["server_from"]
            ),
        )
        if "server_from" in data and not server[0]:
            raise self.fail("dataset.server_from", "only used with server_fraction > 0")
        shifted = self.server_shifted(data, cls, server[0])
        given = {k: v for k, v in data.items() if k not in ("name", "server_shifted", *harness)}
        params, _ = self.component_params(cls, given, "dataset")
        return cls, ComponentSpec(cls.name, params), test_fraction, split_seed, (*server, shifted)

    def server_shifted(self, data: dict[str, Any], cls: type, fraction: float) -> Any:
        """``dataset.server_shifted``: another data set (a name, or a mapping with its
        name and parameters) the server holds as many inputs of as its reserve."""
        if "server_shifted" not in data:
            return None
        key = "dataset.server_shifted"
        if not fraction:
            raise self.fail(key, "only used with server_fraction > 0 (it holds as many inputs)")
        spec = self.component(self.registry.datasets, data["server_shifted"], key)
        other = self.registry.datasets.get(spec.name)
        if other is cls:
            raise self.fail(key, f"expected another data set than '{cls.name}'")
        if other.modality != cls.modality:
            raise self.fail(
                key, f"'{spec.name}' holds {other.modality} data; '{cls.name}' {cls.modality} data"
            )
        return spec

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
        values = {
            k: self.value(data.get(k, spec.default), f"federation.{k}", spec)
            for k, spec in self.FEDERATION.items()
        }
        if values["clients"] > MAX_CLIENTS:
            raise self.fail(
                "federation.clients",
                f"expected at most {MAX_CLIENTS:,} clients, got {values['clients']:,}",
            )
        if values["record_history"] not in (True, False, "auto"):
            raise self.fail(
                "federation.record_history",
                f"expected true, false or auto, got {shown(values['record_history'])}",
            )
        partition = self.component(
            self.registry.partitioners, data.get("partition", "iid"), "federation.partition"
        )
        return FederationConfig(partition=partition, **values)

    def plugin_checks(
        self, cls: Any, params: dict[str, Any], context: ConfigContext, where: str
    ) -> None:
        """A component's own ``validate_config``: its first problem is the error."""
        try:
            problems = list(cls.validate_config(params, context) or ())
        except Exception as exc:  # a plugin's check that crashes is still one line
            raise self.fail(
                where, f"{cls.name}: its check failed: {one_line(exc)}{origin(exc)}"
            ) from None
        for key, message in problems:
            raise self.fail(_join(where, str(key)), str(message))

    def methods(self, data: Any, context: ConfigContext) -> list[MethodSpec]:
        if isinstance(data, list):
            for i, item in enumerate(data):
                if not isinstance(item, str):
                    raise self.fail(f"methods[{i}]", f"expected a method name, got {got(item)}")
            self.no_repeats(data, "methods", "method", "sweep its parameters for more rows")
            data = {name: {} for name in data}
        data = self.mapping(data, "methods")
        if not data:
            raise self.fail("methods", "expected at least one method")
        specs: list[MethodSpec] = []
        for name, params in data.items():
            key = _join("methods", name)
            cls = self.lookup(self.registry.methods, name, key)
            params = {} if params is None else self.mapping(params, key)
            fixed, sweeps = self.component_params(cls, params, key, allow_sweep=True)
            points = _sweep_points(cls.name, fixed, sweeps)
            swept = dataclasses.replace(context, swept=frozenset(sweeps))
            for point in points:  # each point's problems, named by its row label
                self.plugin_checks(cls, point.params, swept, _join("methods", point.label))
            specs.extend(points)
        return specs

    def metrics(self, data: Any) -> list[str] | None:
        if data is None:
            return None
        if not isinstance(data, list) or not data:
            raise self.fail(
                "metrics", f"expected a non-empty list of metric names, got {got(data)}"
            )
        for i, name in enumerate(data):
            self.lookup(self.registry.metrics, name, f"metrics[{i}]")
        self.no_repeats(data, "metrics", "metric", "a column is shown once")
        return list(data)

    def no_repeats(self, values: list[str], key: str, what: str, why: str) -> None:
        """Refuse a name (or a sweep value, as its row label shows it) listed twice."""
        for i, value in enumerate(values):
            if value in values[:i]:
                raise self.fail(f"{key}[{i}]", f"{what} '{value}' is listed twice; {why}")

    def seeds(self, data: Any, key: str = "seeds") -> list[int]:
        if isinstance(data, int) and not isinstance(data, bool):
            data = [data]
        if not isinstance(data, list) or not data:
            raise self.fail(key, f"expected a non-empty list of integers, got {got(data)}")
        for i, seed in enumerate(data):
            if not is_type(seed, int) or not 0 <= seed <= MAX_INT:
                raise self.fail(
                    f"{key}[{i}]", f"expected an integer >= 0 and < 2^63, got {shown(seed)}"
                )
        if len(set(data)) != len(data):
            dup = next(s for s in data if data.count(s) > 1)
            raise self.fail(key, f"seed {dup} is listed twice")
        return list(data)


def expand_method(
    cls: type, given: dict[str, Any], file: str, key: str, registry: Registry
) -> list[MethodSpec]:
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
    """``prefix.key``; a key that is not a short plain name is shown quoted and bounded."""
    if len(key) > 60 or not key.isprintable() or not key.strip() or " " in key:
        key = shown(key, 60)
    return f"{prefix}.{key}" if prefix else key
