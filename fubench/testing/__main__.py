"""``python -m fubench.testing [PLUGIN...]`` (see :mod:`fubench.testing.shell`)."""

import sys

from fubench.testing.shell import run

sys.exit(run())
