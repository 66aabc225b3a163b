"""A plugin module the scale tests load by hand (``load_registry(extra_plugins=...)``):
worker processes and Ray workers import it by its name, as they would any plugin a
user loads that way. It provides the synthetic test images (tests only)."""

import fubench
from tests.conftest import TinyImages


@fubench.hookimpl
def fubench_datasets():
    return [TinyImages]
