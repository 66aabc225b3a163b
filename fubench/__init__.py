"""fubench — a benchmark suite for federated unlearning.

What this module exports is the stable API for plugin authors, and everything a plugin
needs: the component base classes and their declarations, the records they exchange,
``hookimpl``, the errors, the federation a method asks clients through (``Federation``,
``ClientView``, ``TrainSettings``, ``train_local``, ``WeightedAverage``), the round
history (``RoundHistory``, ``RoundRecord``, ``flatten``, ``unflatten``), what metrics
read (``Evaluation``, ``RowInfo``, ``ratio``) and small utilities (``derive_seed``,
``state_copy``, ``log``). Plugins import from ``fubench`` only; ``fubench.testing`` is
the conformance kit for a plugin's own tests.

The names are imported on first use, so ``import fubench`` (and ``fubench --help``)
does not load torch."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# These are read once, when the libraries start: set them before torch is imported.
# MKL_CBWR: CPU results do not depend on the thread count (fubench.engine.determinism).
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
# How an OpenMP thread waits for its team. By default it spins for milliseconds; on a
# busy machine the spinner burns the core its descheduled team-mate needs, and training
# collapses. With these it spins a few microseconds (GOMP_SPINCOUNT, GNU OpenMP: torch on
# Linux), enough for a team that is running, then sleeps; OpenMP runtimes that do not
# read GOMP_SPINCOUNT sleep at once (PASSIVE). tests/test_bench_contention.py measures
# both sides. A user who set either variable keeps their choice.
_OPENMP_WAIT = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"}
if not any(name in os.environ for name in _OPENMP_WAIT):
    os.environ.update(_OPENMP_WAIT)

__version__ = "0.1.0"

#: exported name -> (module, attribute)
_EXPORTS = {
    "ClientView": ("fubench.fl.federation", "ClientView"),
    "Component": ("fubench.params", "Component"),
    "ConfigContext": ("fubench.params", "ConfigContext"),
    "ConfigError": ("fubench.errors", "ConfigError"),
    "Dataset": ("fubench.scenario", "Dataset"),
    "DatasetLoader": ("fubench.api", "DatasetLoader"),
    "DataUnavailable": ("fubench.errors", "DataUnavailable"),
    "derive_seed": ("fubench.fl.training", "derive_seed"),
    "Evaluation": ("fubench.evaluation", "Evaluation"),
    "Feature": ("fubench.features", "Feature"),
    "Federation": ("fubench.fl.federation", "Federation"),
    "flatten": ("fubench.fl.history", "flatten"),
    "ForgetRequest": ("fubench.scenario", "ForgetRequest"),
    "FubenchError": ("fubench.errors", "FubenchError"),
    "hookimpl": ("fubench.plugins", "hookimpl"),
    "log": ("fubench.progress", "say"),
    "Metric": ("fubench.api", "Metric"),
    "ModelFactory": ("fubench.api", "ModelFactory"),
    "NotApplicable": ("fubench.errors", "NotApplicable"),
    "Param": ("fubench.params", "Param"),
    "PARTICIPATION": ("fubench.api", "PARTICIPATION"),
    "ParticipationError": ("fubench.errors", "ParticipationError"),
    "Partitioner": ("fubench.api", "Partitioner"),
    "PluginError": ("fubench.errors", "PluginError"),
    "ratio": ("fubench.evaluation", "ratio"),
    "REFERENCE": ("fubench.api", "REFERENCE"),
    "RegionFeature": ("fubench.features", "RegionFeature"),
    "RequestStream": ("fubench.stream", "RequestStream"),
    "ROLES": ("fubench.api", "ROLES"),
    "RoundHistory": ("fubench.fl.history", "RoundHistory"),
    "RoundRecord": ("fubench.fl.history", "RoundRecord"),
    "RowInfo": ("fubench.evaluation", "RowInfo"),
    "ScenarioKind": ("fubench.api", "ScenarioKind"),
    "ScenarioSetup": ("fubench.scenario", "ScenarioSetup"),
    "Split": ("fubench.scenario", "Split"),
    "state_copy": ("fubench.fl.training", "state_copy"),
    "train_local": ("fubench.fl.training", "train_local"),
    "TrainSettings": ("fubench.fl.training", "TrainSettings"),
    "unflatten": ("fubench.fl.history", "unflatten"),
    "UnlearnContext": ("fubench.api", "UnlearnContext"),
    "Unlearner": ("fubench.api", "Unlearner"),
    "UnlearnResult": ("fubench.api", "UnlearnResult"),
    "WeightedAverage": ("fubench.fl.training", "WeightedAverage"),
    "whole_input": ("fubench.features", "whole_input"),
}

__all__ = [
    "ClientView",
    "Component",
    "ConfigContext",
    "ConfigError",
    "Dataset",
    "DatasetLoader",
    "DataUnavailable",
    "derive_seed",
    "Evaluation",
    "Feature",
    "Federation",
    "flatten",
    "ForgetRequest",
    "FubenchError",
    "hookimpl",
    "log",
    "Metric",
    "ModelFactory",
    "NotApplicable",
    "Param",
    "PARTICIPATION",
    "ParticipationError",
    "Partitioner",
    "PluginError",
    "ratio",
    "REFERENCE",
    "RegionFeature",
    "RequestStream",
    "ROLES",
    "RoundHistory",
    "RoundRecord",
    "RowInfo",
    "ScenarioKind",
    "ScenarioSetup",
    "Split",
    "state_copy",
    "train_local",
    "TrainSettings",
    "unflatten",
    "UnlearnContext",
    "Unlearner",
    "UnlearnResult",
    "WeightedAverage",
    "whole_input",
    "__version__",
]

if TYPE_CHECKING:  # the same names, for type checkers and documentation tools
    from fubench.api import (
        PARTICIPATION,
        REFERENCE,
        ROLES,
        DatasetLoader,
        Metric,
        ModelFactory,
        Partitioner,
        ScenarioKind,
        UnlearnContext,
        Unlearner,
        UnlearnResult,
    )
    from fubench.errors import (
        ConfigError,
        DataUnavailable,
        FubenchError,
        NotApplicable,
        ParticipationError,
        PluginError,
    )
    from fubench.evaluation import Evaluation, RowInfo, ratio
    from fubench.features import Feature, RegionFeature, whole_input
    from fubench.fl.federation import ClientView, Federation
    from fubench.fl.history import RoundHistory, RoundRecord, flatten, unflatten
    from fubench.fl.training import (
        TrainSettings,
        WeightedAverage,
        derive_seed,
        state_copy,
        train_local,
    )
    from fubench.params import Component, ConfigContext, Param
    from fubench.plugins import hookimpl
    from fubench.progress import say as log
    from fubench.scenario import Dataset, ForgetRequest, ScenarioSetup, Split
    from fubench.stream import RequestStream


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fubench' has no attribute '{name}'")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
