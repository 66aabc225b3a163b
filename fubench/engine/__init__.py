"""The engine: one job per (scenario, seed) — its setup, its reference models (trained
once and cached), its methods and its rows. The runner, the conformance kit and the
attention plots all run jobs through it, so there is one way a row is produced."""

from fubench.engine import determinism
from fubench.engine.cache import CachedModel, ModelCache, cache_root
from fubench.engine.job import Job, make_row
from fubench.engine.methods import model_problem
from fubench.engine.plan import Plan, resolve_device
from fubench.engine.references import Outcome

__all__ = [
    "determinism",
    "CachedModel",
    "ModelCache",
    "cache_root",
    "Job",
    "make_row",
    "model_problem",
    "Plan",
    "resolve_device",
    "Outcome",
]
