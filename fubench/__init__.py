"""fubench — a benchmark suite for federated unlearning.

What this module exports is the stable API for plugin authors, and everything a plugin
needs: the component base classes and their declarations, the records they exchange,
``hookimpl``, the errors, the federation a method asks clients through (``Federation``,
``ClientView``, ``TrainSettings``, ``train_local``, ``WeightedAverage``), the round
history (``RoundHistory``, ``RoundRecord``, ``flatten``, ``unflatten``), what metrics
read (``Evaluation``, ``RowInfo``, ``ratio``) and small utilities (``derive_seed``,
``state_copy``, ``log``). Plugins import from ``fubench`` only; ``fubench.testing`` is
the conformance kit for a plugin's own tests."""

import os as _os

# MKL reads this once, at its first call: set before any computation so CPU results do
# not depend on the thread count (see fubench.engine.determinism)
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

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
from fubench.fl.training import TrainSettings, WeightedAverage, derive_seed, state_copy, train_local
from fubench.params import Component, ConfigContext, Param
from fubench.plugins import hookimpl
from fubench.progress import say as log
from fubench.scenario import Dataset, ForgetRequest, ScenarioSetup, Split

__version__ = "0.1.0"

__all__ = [
    "Component",
    "Param",
    "DatasetLoader",
    "Metric",
    "ModelFactory",
    "Partitioner",
    "ScenarioKind",
    "Unlearner",
    "PARTICIPATION",
    "REFERENCE",
    "ROLES",
    "ConfigContext",
    "Dataset",
    "ForgetRequest",
    "RowInfo",
    "ScenarioSetup",
    "Split",
    "UnlearnContext",
    "UnlearnResult",
    "ConfigError",
    "DataUnavailable",
    "FubenchError",
    "NotApplicable",
    "ParticipationError",
    "PluginError",
    "hookimpl",
    "__version__",
    "Evaluation",
    "ratio",
    "ClientView",
    "Federation",
    "RoundHistory",
    "RoundRecord",
    "flatten",
    "unflatten",
    "TrainSettings",
    "WeightedAverage",
    "derive_seed",
    "state_copy",
    "train_local",
    "log",
    "Feature",
    "RegionFeature",
    "whole_input",
]
