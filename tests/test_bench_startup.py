"""Start-up time of the command line against a bare interpreter, as ratios measured in
one run (no timed asserts).

Three variants run in fresh processes, in a folder without scenario files:

* ``python``  — ``python -c pass``: the floor no command can go below;
* ``help``    — ``fubench --help``: the command line itself (nothing imports torch);
* ``list``    — ``fubench list`` with a current plugin manifest: printed from the
  manifest, without importing a plugin or torch.

Run with timing on (the project's default disables it)::

    pytest tests/test_bench_startup.py --benchmark-enable -s

and the last test prints help/python and list/python time ratios (1 would be as fast as
a bare interpreter) with the spread of each variant's rounds. With timing off every
variant still runs once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.benchtools import Interleaved, run
from tests.conftest import run_cli
from tests.test_ux import subprocess_env

pytestmark = pytest.mark.training  # starts processes: not in the fast tier
LINES: list[str] = []


@pytest.mark.benchmark(group="startup")
def test_bench_startup_against_a_bare_interpreter(benchmark, tmp_path, monkeypatch, capsys):
    env = subprocess_env(tmp_path)
    monkeypatch.setenv("FUBENCH_CACHE", env["FUBENCH_CACHE"])
    monkeypatch.chdir(tmp_path)
    assert run_cli("list") == 0  # writes the manifest the timed runs read
    capsys.readouterr()

    def command(*args: str):
        def start() -> None:
            subprocess.run(
                [sys.executable, *args],
                cwd=tmp_path,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )

        return start

    cli = ("-c", "import sys; from fubench.cli import main; sys.exit(main(sys.argv[1:]))")
    timer = Interleaved(
        {
            "python": command("-c", "pass"),
            "help": command(*cli, "--help"),
            "list": command(*cli, "list"),
        }
    )
    if not run(benchmark, timer):
        return
    LINES.extend(
        [
            timer.line("python", "help", "help/python (time ratio)"),
            timer.line("python", "list", "list/python (time ratio)"),
        ]
    )


def test_bench_startup_ratios(capsys):
    """Print the ratios (the benchmark above must have run with timing on)."""
    if not LINES:
        pytest.skip("benchmarks ran with timing disabled (use --benchmark-enable)")
    with capsys.disabled():
        print("\n" + "\n".join(LINES))
