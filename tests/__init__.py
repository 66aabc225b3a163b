"""fubench's test suite.

Imported before any test module: ``import fubench`` sets the OpenMP wait policy (and
MKL's reproducible mode) before a test module imports torch, as it does for the CLI.
Without it a suite run beside other work on a busy machine crawls (see
tests/test_bench_contention.py)."""

import fubench  # noqa: F401 - for its side effect on the environment
