"""``python -m fubench``: the command line."""

import sys

from fubench.cli import main

sys.exit(main())
