"""``python -m fubench.cli``: the command line."""

import sys

from fubench.cli import main

sys.exit(main())
