"""fubench's conformance kit: the checks every plugin component must pass.

A plugin's own test suite runs it (``benchopt test`` is the model)::

    # tests/test_conformance.py of your plugin
    import fubench.testing

    def test_my_method_conforms():
        fubench.testing.check_unlearner("my_method")      # raises ConformanceError

    @fubench.testing.parametrize(plugin="my-fubench-plugin")   # one test per component
    def test_conformance(case):
        case.check()

or from a shell: ``python -m fubench.testing my-fubench-plugin``.

What is checked, on a tiny synthetic data set (10 classes of 3x16x16 grey images, or 8
tabular features for kinds that refuse images), a tiny CNN / MLP of the kit's own and a
one-round FedAvg — fast enough for every CI run:

* **methods** (unlearners), on every registered scenario kind: the result is a model of
  the original's architecture with finite weights; the same seed gives the same model;
  every client it asks for work goes through the harness's ``Federation`` (which
  raises ``ParticipationError`` for a client outside the declared ``participation``)
  and the clients involved match the declaration; a kind it cannot serve is declined
  cleanly (``unsupported_kinds`` or ``NotApplicable`` → "n/a"), never by a crash; it
  serves at least one kind (what it changes in place of its inputs is its own copy:
  the engine gives every method its own);
* **metrics**: finite numbers or an explicit undefined (``None``) on every kind that
  lists them among its defaults (elsewhere they may decline), computable somewhere;
* **partitioners**: disjoint index sets covering the data, deterministic for a seed;
* **scenario kinds**: a consistent, deterministic ``ScenarioSetup`` (one split per
  client, masks matching the data, "test" and "forget" evaluation sets, registered
  default metrics) and a ``check`` that returns a list of messages;
* **models**: build for the kit's inputs, output one logit per class, deterministic.

Data-set loaders are not checked (they read real data, which a unit test must not
download). Everything runs against whatever is registered when the kit runs: pass a
``registry`` (``fubench.plugins.load_registry(extra_plugins=[module])``) to check a
module that is not installed. The kit runs each scenario kind as a job of the same
engine that ``fubench run`` uses (:mod:`fubench.engine`), on its tiny world
(:mod:`fubench.testing.tiny`).
"""

from __future__ import annotations

from collections.abc import Iterable

from fubench.registry import Registry
from fubench.testing.kit import Case, Kit, cases, shared_kit
from fubench.testing.world import ConformanceError

__all__ = [
    "ConformanceError",
    "Kit",
    "Case",
    "cases",
    "parametrize",
    "check_plugin",
    "check_unlearner",
    "check_metric",
    "check_partitioner",
    "check_scenario_kind",
    "check_model",
    "main",
]


def parametrize(
    plugin: str | Iterable[str] | None = None,
    registry: Registry | None = None,
    builtin_only: bool = False,
    argname: str = "case",
):
    """``pytest.mark.parametrize`` over :func:`cases`: one test per component."""
    import pytest

    found = cases(plugin, registry, builtin_only)
    return pytest.mark.parametrize(argname, found, ids=[str(c) for c in found])


def check_plugin(plugin: str, registry: Registry | None = None) -> None:
    """Check every component a plugin provides; one error listing all failures."""
    errors = []
    for case in cases(plugin, registry):
        try:
            case.check()
        except ConformanceError as exc:
            errors.append(str(exc))
    if errors:
        raise ConformanceError("\n".join(errors))


def check_unlearner(name: str, registry: Registry | None = None) -> None:
    shared_kit(registry).check("method", name)


def check_metric(name: str, registry: Registry | None = None) -> None:
    shared_kit(registry).check("metric", name)


def check_partitioner(name: str, registry: Registry | None = None) -> None:
    shared_kit(registry).check("partitioner", name)


def check_scenario_kind(name: str, registry: Registry | None = None) -> None:
    shared_kit(registry).check("scenario kind", name)


def check_model(name: str, registry: Registry | None = None) -> None:
    shared_kit(registry).check("model", name)


def main(argv: list[str] | None = None) -> int:
    """``python -m fubench.testing [PLUGIN...]``: check and print one line per component."""
    from fubench.testing.shell import run

    return run(argv)
