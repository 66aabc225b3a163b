"""Where fubench keeps what it can compute again: trained models
(:mod:`fubench.engine.cache`) and the plugin manifest (:mod:`fubench.cli.manifest`).
A module of its own so that reading the folder imports nothing heavy."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$FUBENCH_CACHE``, default ``~/.cache/fubench/models``."""
    env = os.environ.get("FUBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fubench" / "models"
