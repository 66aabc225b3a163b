"""``python -m fubench.testing [PLUGIN...]`` (see :mod:`fubench.testing.shell`): the
checks run in a child process, which is this module again with a report file."""

import os
import sys

from fubench.testing.shell import REPORT_VARIABLE, run, run_in_child

sys.exit(run() if os.environ.get(REPORT_VARIABLE) else run_in_child())
