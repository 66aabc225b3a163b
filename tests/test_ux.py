"""The first hour of a user and of a plugin author: progress output (under a real
pseudo-terminal and through a pipe), partial runs that change no row they did not
compute, `list` / `show` / `validate`, the missing-data message, readable plots, broken
plugins that do not stop everything, and the documented answers of the plugin API."""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import fubench
from fubench.errors import DataUnavailable, PluginError, UnknownNameError
from fubench.plugins import load_registry, reset_registry
from fubench.results import read_result, sealed, write_json_atomic
from tests.conftest import BACKDOOR_YAML, TEST_PLUGIN, run_cli
from tests.test_plugins import fake_distribution  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def doc_section(page: str, heading: str) -> str:
    """The text of docs/``page`` under ``heading`` (e.g. ``"## Result files"``), up to the
    next heading of the same or a higher level (a ``#`` inside a code block is no heading)."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    assert heading in lines, f"docs/{page} has no section {heading!r}"
    level = len(heading.split(" ")[0])
    body, fenced = [], False
    for line in lines[lines.index(heading) + 1 :]:
        fenced ^= line.startswith("```")
        marks = len(line) - len(line.lstrip("#"))
        if not fenced and 0 < marks <= level and line[marks : marks + 1] == " ":
            break
        body.append(line)
    return "\n".join(body) + "\n"


#: runs the CLI with the synthetic test data set registered (for subprocesses)
CLI_WITH_TEST_DATA = (
    "import sys; from tests.conftest import TEST_PLUGIN; "
    "from fubench.plugins import load_registry, reset_registry; "
    "reset_registry(load_registry(extra_plugins=[TEST_PLUGIN])); "
    "from fubench.cli import main; sys.exit(main(sys.argv[1:]))"
)


def tiny_yaml(
    tmp_path: Path,
    rounds: int = 3,
    methods: str = "{retrain: {}, finetune: {rounds: 1}}",
    seeds: str = "[0]",
    name: str = "tiny",
) -> Path:
    text = BACKDOOR_YAML.format(name=name, dataset="tiny_images", rounds=rounds)
    text = text.replace("methods: {retrain: {}, finetune: {rounds: 1}}", f"methods: {methods}")
    text = text.replace("seeds: [0]", f"seeds: {seeds}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), FUBENCH_CACHE=str(tmp_path / "cache"), **extra)
    env.pop("FUBENCH_PROGRESS_INTERVAL", None)
    env.update(extra)
    return env


# ------------------------------------------------------------------- 1. progress
#: runs the CLI with the test data set from an importable plugin module, so that worker
#: processes (--jobs 2) load it too
CLI_WITH_WORKERS = (
    "import sys; import tests.scale_plugin as plugin; "
    "from fubench.plugins import load_registry, reset_registry; "
    "reset_registry(load_registry(extra_plugins=[plugin])); "
    "from fubench.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run_in_a_pseudo_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """(exit code, everything written to the terminal) of a CLI run under a pty."""
    import pty  # noqa: F401  (the test needs a platform with pseudo-terminals)

    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_WITH_WORKERS, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def screen_lines(out: str) -> list[str]:
    """What a terminal showed, line by line: redrawn lines apart, escapes removed."""
    return [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", part) for part in re.split(r"[\r\n]+", out)]


@pytest.mark.training
def test_progress_under_a_pseudo_terminal_with_two_jobs(tmp_path):
    """Under a pty (TERM=xterm, which reports 0x0 until resized) with --jobs 2: a
    whole-run bar counting rows and reference rounds with an ETA, and a live line per
    worker naming its seed, what it trains and the round (and clients) it is at."""
    file = tiny_yaml(tmp_path, rounds=2, seeds="[0, 1]")
    code, out = run_in_a_pseudo_terminal(
        ["run", str(file), "--out", str(tmp_path / "out"), "--jobs", "2"],
        subprocess_env(tmp_path, TERM="xterm"),
    )
    assert code == 0, out[-3000:]
    lines = screen_lines(out)
    run_bar = r"tiny: +\d+%\|.*\| \d/2 rows, \d/8 reference rounds, \d+ s elapsed"
    assert any(re.search(run_bar + ", ETA \\d+ s", line) for line in lines), out[-3000:]
    for seed in (0, 1):
        assert any(
            re.fullmatch(rf" *  seed {seed} original: round \d/2, \d+ s elapsed.*", line)
            for line in lines
        ), f"a live line for the worker on seed {seed}"
    assert any(
        re.search(r"  seed \d (original|retrain): round \d/2 \(\d/3 clients\)", li) for li in lines
    )
    assert any(re.search(r"  seed \d finetune: (running|round|measuring)", li) for li in lines)
    assert "plugin(s)" not in out, "the tasks really ran in worker processes"
    assert re.search(r"tiny: done, 2/2 rows, 8/8 reference rounds, \d+ s elapsed", out)
    assert "| finetune" in out, "the table still follows"


@pytest.mark.training
def test_periodic_progress_lines_through_a_pipe(tmp_path):
    file = tiny_yaml(tmp_path, rounds=2, seeds="[0, 1]")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI_WITH_WORKERS,
            "run",
            str(file),
            "--out",
            str(tmp_path / "out"),
            "--jobs",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path, FUBENCH_PROGRESS_INTERVAL="0"),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "\r" not in done.stderr and "%|" not in done.stderr, "no bars into a pipe"
    assert any(
        re.fullmatch(
            r"tiny: \d+% of the work, \d/2 rows, \d/8 reference rounds, \d+ s elapsed, "
            r"ETA \d+ s",
            line,
        )
        for line in lines
    ), lines
    for seed in (0, 1):
        assert any(
            re.fullmatch(rf"seed {seed} original: round 2/2, \d+ s elapsed, ETA \d+ s", line)
            for line in lines
        ), lines
    assert any(
        re.fullmatch(r"seed \d original: round 2/2 \(1/3 clients\), \d+ s elapsed, ETA \d+ s", li)
        for li in lines
    ), lines
    assert "| finetune" in done.stdout


def whole_run(reference_rounds: dict[int, int], rows: dict[tuple[int, str], str]):
    from fubench.executors.display import Estimate, Workload

    return Estimate(Workload("s", reference_rounds, rows))


def rounds_of(estimate, seed: int, training: str, n: int, seconds_per_round: float) -> None:
    from fubench.engine.tasks import Progress
    from fubench.progress import Step

    for done in range(1, n + 1):
        step = Step(f"seed {seed} {training}", "round", done, n, done * seconds_per_round)
        estimate.reference_round(Progress(seed, seed, step, reference=True))


def test_the_whole_run_counts_work_not_rows():
    """The issue's run sat at 0 % while the workers trained: the reference rounds count.
    A method row counts as its measured time in reference rounds, per method."""
    from fubench.executors.display import ROW_PRIOR

    rows = {(s, m): m for s in (0, 1) for m in ("fast", "slow")}
    estimate = whole_run({0: 30, 1: 30}, rows)
    assert estimate.work() == (0, 60 + 4 * ROW_PRIOR)
    rounds_of(estimate, 0, "original", 15, seconds_per_round=2.0)
    done, total = estimate.work()
    assert done == 15 and total == 60 + 4 * ROW_PRIOR, "half a seed's models: 15 rounds done"
    estimate.row_done(0, "slow", 20.0)  # 10 rounds' time
    estimate.row_done(0, "fast", 2.0)  # 1 round's time
    done, total = estimate.work()
    assert done == 15 + 10 + 1
    assert total == done + 45 + 10 + 1, "the other seed's rows: as long as their method's"
    assert estimate.reference() == (15, 60)


def test_models_found_in_the_cache_cost_no_work():
    estimate = whole_run({0: 30, 1: 30}, {(0, "m"): "m", (1, "m"): "m"})
    estimate.seed_ready(1)  # seed 1's models were in the cache after all
    rounds_of(estimate, 0, "original", 15, 1.0)
    rounds_of(estimate, 0, "retrain", 15, 1.0)
    estimate.seed_ready(0)
    assert estimate.reference() == (30, 30)


def test_the_whole_run_line_and_eta_through_a_pipe(monkeypatch, capsys):
    """In a log: the whole-run line, then each running task's; the ETA is the time
    since the tasks started working times the work left over the work done."""
    from fubench.engine.tasks import Progress, RowDone, SetupBuilt, TaskDone
    from fubench.executors.display import Display, Workload
    from fubench.progress import Step

    monkeypatch.setenv("FUBENCH_PROGRESS_INTERVAL", "0")
    clock = [0.0]
    seen = []
    workload = Workload("s", {0: 4}, {(0, "m"): "m"})
    with Display([], seen.append, workload, clock=lambda: clock[0]) as display:
        clock[0] = 5.0  # the worker loaded its data
        display.handle(Progress(7, 0, Step("seed 0", doing="the models"), reference=True))
        for done in (1, 2):
            clock[0] += 10.0
            step = Step("seed 0 original", "round", done, 2, 10.0 * done)
            display.handle(Progress(7, 0, step, reference=True))
        display.handle(SetupBuilt(0, {}, []))  # its retrain was in the cache
        clock[0] += 30.0
        display.handle(RowDone(0, "m", {}, 30.0))
        display.handle(TaskDone(7))
    assert len(seen) == 6, "every event is passed on"
    err = capsys.readouterr().err.splitlines()
    assert err[:6] == [
        "s: 0% of the work, 0/1 rows, 0/4 reference rounds, 5 s elapsed",
        "seed 0: the models",
        # 1 round of 4 + a row guessed at ROW_PRIOR = 2 rounds: 1/6 done in 10 s
        "s: 17% of the work, 0/1 rows, 1/4 reference rounds, 15 s elapsed, ETA 50 s",
        "seed 0 original: round 1/2, 10 s elapsed, ETA 10 s",
        # the row: 10 s a round, so 20 s left, 2 of 6 done in 20 s
        "s: 33% of the work, 0/1 rows, 2/4 reference rounds, 25 s elapsed, ETA 40 s",
        "seed 0 original: round 2/2, 20 s elapsed, ETA 0 s",
    ]
    assert "s: 50% of the work, 0/1 rows, 2/2 reference rounds, 25 s elapsed, ETA 20 s" in err
    assert err[-1] == "s: done, 1/1 rows, 2/2 reference rounds, 55 s elapsed"


def test_progress_lines_respect_the_interval(monkeypatch, capsys):
    import time

    from fubench import progress

    monkeypatch.setattr(progress, "_LAST_LINE", [time.monotonic() - 7200])  # long ago
    monkeypatch.setenv("FUBENCH_PROGRESS_INTERVAL", "3600")
    list(progress.bar(range(4), desc="seed 0 original", unit="round"))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seed 0 original: round 1/4, ")
    monkeypatch.setenv("FUBENCH_PROGRESS_INTERVAL", "0")
    list(progress.bar(range(4), desc="seed 0 original", unit="round"))
    assert len(capsys.readouterr().err.splitlines()) == 4


def test_quiet_is_silent(test_registry, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FUBENCH_PROGRESS_INTERVAL", "0")
    assert (
        run_cli("run", str(tiny_yaml(tmp_path, rounds=1)), "--out", str(tmp_path / "b"), "-q") == 0
    )
    err = capsys.readouterr().err
    assert "elapsed" not in err and "seed 0" not in err, err


def test_progress_line_and_durations():
    from fubench import progress

    assert [progress.duration(s) for s in (4.4, 65, 120, 3720)] == [
        "4 s",
        "1 min 5 s",
        "2 min",
        "1 h 2 min",
    ]
    rounds = progress._Lines(range(15), "seed 0 original", "round", 15)
    rounds.done, rounds.start = 7, 100.0
    progress._ACTIVE.append(rounds)
    try:
        assert (
            progress.progress_line(now=142.0)
            == "seed 0 original: round 7/15, 42 s elapsed, ETA 48 s"
        )
    finally:
        progress._ACTIVE.remove(rounds)


# ---------------------------------------------------------------- 2. partial runs
class Amnesia(fubench.Unlearner):
    """Returns the model unchanged."""

    name = "amnesia"

    def unlearn(self, ctx):
        return ctx.model


class HalfReset(fubench.Unlearner):
    """Reports a metric of its own, which every row then computes."""

    name = "half_reset"
    reports = ("reset_frac",)

    def unlearn(self, ctx):
        return fubench.UnlearnResult(ctx.model, metrics={"reset_frac": 0.5})


class Boom(fubench.Unlearner):
    """Always raises."""

    name = "boom"

    def unlearn(self, ctx):
        return 1 / 0


EXTRA = types.ModuleType("ux_methods")
EXTRA.fubench_unlearners = fubench.hookimpl(lambda: [Amnesia, HalfReset, Boom])


@pytest.fixture(scope="module")
def kit():
    from fubench.testing import Kit

    return Kit(load_registry(extra_plugins=[EXTRA]))


@pytest.fixture
def ux_registry():
    registry = load_registry(extra_plugins=[TEST_PLUGIN, EXTRA])
    reset_registry(registry)
    return registry


def test_a_partial_run_changes_no_row_it_did_not_compute(
    ux_registry, tmp_path, capsys, monkeypatch
):
    file = tiny_yaml(
        tmp_path,
        rounds=1,
        seeds="[0, 1]",
        methods="{retrain: {}, finetune: {rounds: 1}, half_reset: {}, boom: {}}",
    )
    out = tmp_path / "results"
    assert run_cli("run", str(file), "--out", str(out)) == 1  # boom failed
    seed0, seed1 = out / "tiny" / "seed_0.json", out / "tiny" / "seed_1.json"
    before, other_seed = read_result(seed0), read_result(seed1)
    assert before["methods"]["retrain"]["metrics"]["reset_frac"] is None  # computed for all
    failed = before["methods"]["boom"]
    assert failed["status"] == "failed" and "ZeroDivisionError" in failed["traceback"]
    assert "return 1 / 0" in failed["traceback"], "the full traceback is kept"
    # a partial run: another method, one seed, models retrained (same on the CPU); a
    # later date, since both runs may fall in the same second
    later = "2100-01-01T00:00:00+00:00"
    monkeypatch.setattr("fubench.results.utc_now", lambda: later)
    assert (
        run_cli(
            "run",
            str(file),
            "--out",
            str(out),
            "--methods",
            "retrain,amnesia",
            "--seeds",
            "0",
            "--no-cache",
        )
        == 0
    )
    after = read_result(seed0)
    for label in ("original", "retrain", "finetune", "half_reset"):
        assert after["methods"][label] == before["methods"][label], label
    assert after["methods"]["amnesia"]["status"] == "ok"
    # the file's provenance is the last run's; each row names the run that computed it
    assert after["methods"]["amnesia"]["computed_at"]["date"] == after["provenance"]["date"]
    assert after["methods"]["finetune"]["computed_at"]["date"] == before["provenance"]["date"]
    assert after["provenance"]["date"] == later != before["provenance"]["date"]
    assert set(after["scenario"]["config"]["methods"]) == {
        "retrain",
        "finetune",
        "half_reset",
        "boom",
        "amnesia",
    }
    assert after["scenario"]["config"]["seeds"] == [0, 1]
    assert read_result(seed1) == other_seed, "a seed not asked for is not touched"
    capsys.readouterr()
    assert run_cli("table", str(out)) == 0
    table = capsys.readouterr().out
    assert "| amnesia (seed 0) " in table, table
    assert re.search(r"\| finetune +\|", table), "rows over every seed keep their name"


def test_a_reference_row_is_replaced_when_its_model_measures_differently(
    ux_registry, tmp_path, capsys
):
    file = tiny_yaml(tmp_path, rounds=1)
    out = tmp_path / "results"
    assert run_cli("run", str(file), "--out", str(out)) == 0
    path = out / "tiny" / "seed_0.json"
    stored = read_result(path)
    true_acc = stored["methods"]["retrain"]["metrics"]["test_acc"]
    stored["methods"]["retrain"]["metrics"]["test_acc"] = true_acc + 0.25
    write_json_atomic(path, sealed(stored))  # as a run with another retrain wrote it
    capsys.readouterr()
    assert run_cli("run", str(file), "--out", str(out), "--methods", "amnesia") == 0
    assert "the retrain model differs" in capsys.readouterr().err
    assert read_result(path)["methods"]["retrain"]["metrics"]["test_acc"] == true_acc


def test_table_names_the_seeds_of_a_row_that_ran_on_fewer():
    from fubench.report.table import aggregate, row_label
    from tests.test_leaderboard import metrics, result, row

    results = [result(s, {"fast": row(metrics(0.8, 0.1, 1.0))}) for s in (0, 1, 2)]
    results[1]["methods"]["late"] = row(metrics(0.9, 0.2, 1.0), method="late")
    [table] = aggregate(results, load_registry())
    assert row_label(table, "fast") == "fast"
    assert row_label(table, "late") == "late (seed 1)"


# -------------------------------------------------------------- 3. list and show
def test_list_without_argument_shows_every_category_with_headings(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    for heading in (
        "Methods (",
        "Kinds (",
        "Metrics (",
        "Partitioners (",
        "Datasets (",
        "Models (",
    ):
        assert re.search(rf"^{re.escape(heading)}\d+\):$", out, re.M), heading
    assert re.search(r"^Scenario files in scenarios/ \(\d+;", out, re.M)
    assert re.search(r"^  backdoor_mnist\.yaml +backdoor on mnist, mnist_cnn", out, re.M)


@pytest.mark.training
def test_output_into_a_closed_pipe_stops_without_a_word(tmp_path):
    """``fubench list | head -1``: the reader leaves early; no traceback, no error line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fubench.cli", "list"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(tmp_path),
    )
    proc.stdout.close()  # before the first line: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


def test_list_scenarios_lists_the_files_of_a_folder_and_list_kinds_the_kinds(
    tmp_path, capsys, test_registry
):
    tiny_yaml(tmp_path, name="mine")
    (tmp_path / "broken.yaml").write_text("version: 1\nnope: 3\n")
    assert run_cli("list", "scenarios", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^  mine\.yaml +backdoor on tiny_images, mnist_cnn, 3 clients × 3 "
        r"rounds, 2 methods, seeds 0$",
        out,
        re.M,
    ), out
    assert re.search(r"^  broken\.yaml +INVALID: ", out, re.M)
    assert run_cli("list", "kinds") == 0
    kinds = capsys.readouterr().out
    assert re.search(r"^  backdoor ", kinds, re.M) and "mine.yaml" not in kinds


def test_list_never_cuts_a_sentence_and_full_or_show_give_the_whole_text(capsys):
    from fubench.cli.info import description, summary

    registry = load_registry()
    assert run_cli("list", "metrics") == 0
    out = capsys.readouterr().out
    for name, cls in registry.metrics.items():
        first, more = summary(cls)
        text = " ".join(description(cls).split())
        assert text.startswith(first)
        assert first == text or more, name
        assert first.count("(") == first.count(")"), f"{name}: cut inside parentheses"
        assert re.search(
            rf"^  {re.escape(name)} +{re.escape(first)}{' …' if more else ''}  \[", out, re.M
        ), name
    long = next(n for n, c in registry.metrics.items() if summary(c)[1])
    assert run_cli("list", "metrics", "--full") == 0
    full = " ".join(capsys.readouterr().out.split())
    assert " ".join(description(registry.metrics.get(long)).split()) in full
    assert run_cli("show", long) == 0
    shown = capsys.readouterr().out
    assert " ".join(description(registry.metrics.get(long)).split()) in " ".join(shown.split())
    assert re.search(r"^  role = '\w+'$", shown, re.M)
    assert run_cli("show", "finetune") == 0
    assert re.search(r"^  rounds: default 5, ≥ 1 — ", capsys.readouterr().out, re.M)
    assert run_cli("show", "fintune") == 2
    assert "did you mean 'finetune'" in capsys.readouterr().err


# --------------------------------------------------------------------- 4. validate
class NeedsDownload(fubench.DatasetLoader):
    """A data set that is never here."""

    name = "far_away"
    parameters = {"download": fubench.Param(True, bool)}
    calls: list[bool] = []

    def load(self, root):
        NeedsDownload.calls.append(self.download)
        raise DataUnavailable(f"far_away is not in {root}/far and could not be downloaded")


FAR = types.ModuleType("ux_far")
FAR.fubench_datasets = fubench.hookimpl(lambda: [NeedsDownload])


def test_validate_says_which_data_are_here(tmp_path, capsys):
    reset_registry(load_registry(extra_plugins=[TEST_PLUGIN, FAR]))
    here = tiny_yaml(tmp_path, name="here")
    far = tmp_path / "far.yaml"
    far.write_text(
        here.read_text().replace("tiny_images", "far_away").replace("name: here", "name: far")
    )
    assert run_cli("validate", str(here), str(far)) == 0  # valid files; data is a note
    captured = capsys.readouterr()
    assert re.search(
        r"^  data: tiny_images — here, no download needed: synthetic", captured.out, re.M
    )
    assert re.search(
        r"^  data: far_away — NOT here without a download or a package: "
        r"far_away is not in .*/far",
        captured.out,
        re.M,
    )
    assert NeedsDownload.calls == [False], "asked not to download"
    assert "1 of 2 valid file(s) need data this machine lacks" in captured.err


# ------------------------------------------------------------------ 5. missing data
def idx_files(folder: Path, n: int = 4) -> None:
    """Tiny Fashion-MNIST IDX files, gzipped, as Debian's package lays them out."""
    folder.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        images = struct.pack(">iiii", 2051, n, 28, 28) + bytes(range(n)) * 784
        labels = struct.pack(">ii", 2049, n) + bytes(range(n))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))


@pytest.fixture
def no_network(monkeypatch):
    """torchvision's download fails as it does offline: after creating its folder."""
    import torchvision

    def download(self):
        os.makedirs(self.raw_folder, exist_ok=True)
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\n"
            "<urlopen error [Errno -2] Name or service not known>"
        )

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", download)


def test_missing_fashion_mnist_is_one_line_naming_the_folder(
    tmp_path, monkeypatch, capsys, no_network
):
    from fubench_builtins import datasets

    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataUnavailable) as info:
        datasets.FashionMNIST().load(root)
    message = str(info.value)
    assert "\n" not in message
    assert f"in {root / 'FashionMNIST' / 'raw'}" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "Name or service not known" in message
    assert "offline source" not in capsys.readouterr().err, "no fallback that is not there"
    assert list(root.iterdir()) == [], "no empty folder left behind"


def test_the_debian_fallback_is_announced_only_once_it_loaded(
    tmp_path, monkeypatch, capsys, no_network
):
    from fubench_builtins import datasets

    debian = tmp_path / "debian-package"
    idx_files(debian)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", debian)
    data = datasets.FashionMNIST().load(tmp_path / "data")
    assert len(data.y_train) == 4 and "Debian dataset-fashion-mnist" in data.source
    err = capsys.readouterr().err
    assert "using the offline source debian" in err and "FashionMNIST/raw" in err
    assert not (tmp_path / "data" / "FashionMNIST").exists()


# ---------------------------------------------------------------------- 7. plots
def sweep_results(points, seeds=(0, 1), scenario="s"):
    from tests.test_tis_reset import fake_results

    results = fake_results(points, seeds)
    for r in results:
        r["scenario"]["name"] = scenario
    return results


def test_tradeoff_keeps_an_outlier_off_the_axes_and_names_it():
    from fubench.report.layout import robust_limits
    from fubench.report.plots import tradeoff_figure

    assert robust_limits([0.0, 0.1, 0.9, 1.0, 3.5], anchors=(0.0, 1.0))[1] < 1.2
    results = sweep_results(
        {
            "tis_reset[gamma=0.1]": (0.99, 0.2),
            "tis_reset[gamma=0.5]": (0.95, 0.9),
            "tis_reset[gamma=0.9]": (0.5, 1.0),
            "fedrecovery": (0.97, 3.5),
        }
    )
    fig = tradeoff_figure(results, load_registry())
    ax = fig.axes[0]
    assert ax.get_xlim()[1] < 1.5, "the outlier does not stretch the axis"
    texts = [t.get_text() for t in ax.texts]
    assert "fedrecovery: NFS 3.5 (off the axis)" in texts


def test_tradeoff_labels_do_not_overlap_near_zero_one():
    from fubench.report.plots import tradeoff_figure

    points = {
        f"tis_reset[gamma={g}]": (1.0 - g / 50, g / 40) for g in (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
    }
    points.update(
        {
            f"random_reset[gamma={g}]": (1.0 - g / 45, g / 35)
            for g in (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
        }
    )
    fig = tradeoff_figure(sweep_results(points), load_registry())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) >= 4, "a sweep's ends are always labelled"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_tradeoff_of_many_scenarios_is_a_grid_with_honest_titles_and_notes():
    from fubench.report.plots import tradeoff_figure

    results = []
    for i in range(8):
        results += sweep_results(
            {
                "tis_reset[gamma=0.1]": (0.99, 0.2),
                "tis_reset[gamma=0.5]": (1.15 if i == 0 else 0.95, 0.9),
            },
            seeds=(0,) if i == 1 else (0, 1),
            scenario=f"s{i}",
        )
    fig = tradeoff_figure(results, load_registry())
    width, height = fig.get_size_inches()
    assert width / height < 2, "a grid, not a strip"
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(panels) == 8
    titles = {ax.get_title().split(":")[0]: ax.get_title() for ax in panels}
    assert titles["s1"].endswith("(1 seed)") and "±" not in titles["s1"]
    assert titles["s2"].endswith("(2 seeds, mean ± std)")
    notes = {
        name: any("NTA above 1" in t.get_text() for t in ax.texts)
        for name, ax in zip(titles, panels)
    }
    assert notes["s0"] and not notes["s2"]


def test_cost_chart_title_says_mean_and_std_only_for_several_seeds(tmp_path):
    import matplotlib.pyplot as plt

    from fubench.report.cost_plot import cost_chart
    from tests.test_leaderboard import two_scenarios

    seen = []
    real_savefig = plt.Figure.savefig

    def savefig(fig, *args, **kwargs):
        seen.extend(ax.get_title() for ax in fig.axes if ax.get_visible())
        return real_savefig(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plt.Figure, "savefig", savefig)
        cost_chart(two_scenarios(), tmp_path / "c.png", load_registry(), metric="rtr")
    assert "alpha: rtr (3 seeds, mean ± std)" in seen and "beta: rtr (1 seed)" in seen


# --------------------------------------------------------------- 8. declarations
@pytest.mark.parametrize(
    "param, expected",
    [
        (fubench.Param("0.5", float), "default '0.5' is not a number; declare Param(0.5, ...)"),
        (fubench.Param(3.5, int), "default 3.5 is not an integer; declare Param(3, ...)"),
    ],
)
def test_a_wrong_default_is_caught_when_the_plugin_loads(param, expected, capsys):
    class Sloppy(fubench.Unlearner):
        name = "sloppy"
        parameters = {"p": param}

        def unlearn(self, ctx):
            return ctx.model

    module = types.ModuleType("sloppy_plugin")
    module.fubench_unlearners = fubench.hookimpl(lambda: [Sloppy])
    registry = load_registry(extra_plugins=[module])
    assert capsys.readouterr().err.strip() == (
        f"fubench: plugin 'sloppy_plugin' is broken and was skipped: method 'sloppy' "
        f"(Sloppy): parameter 'p': {expected}; fix it"
    )
    with pytest.raises(
        UnknownNameError,
        match="method 'sloppy' is unavailable: its plugin failed to load .*parameter 'p'",
    ):
        registry.methods.get("sloppy")


# ------------------------------------------------------------ 9. the kit's lines
def test_the_kit_prints_one_line_for_a_plugin_it_cannot_find_or_load(capsys):
    from fubench.testing import main

    assert main(["no_such_plugin"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "no loaded plugin is called 'no_such_plugin'" in err[0]
    broken = types.ModuleType("half_baked")
    broken.fubench_unlearners = lambda: []  # undecorated
    reset_registry(load_registry(extra_plugins=[broken]))
    capsys.readouterr()
    assert main(["half_baked"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "fubench.testing: error: plugin 'half_baked' failed to load: "
        "fubench_unlearners lacks the @fubench.hookimpl decorator, so fubench "
        "would never call it; decorate it; fix it"
    ]


def test_the_kit_names_the_line_where_unlearn_raised(kit):
    outcome = kit.unlearn(kit.stage("client"), "boom")
    assert outcome.status == "failed"
    assert re.fullmatch(
        r"unlearn\(\) raised ZeroDivisionError: division by zero "
        r"\(test_ux\.py:\d+\)",
        outcome.error,
    ), outcome.error


def test_the_docs_document_the_traceback_key():
    results = doc_section("reference/results.md", "## Result files")
    assert '"traceback"' in results and "full Python traceback" in results


def test_the_docs_scenario_example_validates(tmp_path, capsys):
    example = doc_section("reference/scenario-files.md", "## An annotated example")
    block = example.split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "docs_example.yaml"
    path.write_text(block)
    assert run_cli("validate", str(path)) == 0, capsys.readouterr().err


def test_the_docs_result_schema_names_every_key_a_result_has(ux_registry, tmp_path):
    schema = doc_section("reference/results.md", "## Result files").split("```\n")[1]
    schema = schema.split("```")[0]
    file = tiny_yaml(tmp_path, rounds=1, seeds="[0]", methods="{retrain: {}, finetune: {}}")
    assert run_cli("run", str(file), "--out", str(tmp_path / "out"), "-q") == 0
    result = read_result(tmp_path / "out" / "tiny" / "seed_0.json")
    row = result["methods"]["finetune"]
    missing = [k for k in [*result, *result["provenance"], *row] if f'"{k}"' not in schema]
    assert not missing, f"the result schema in docs/reference/results.md lacks {missing}"


# ------------------------------------------------------------ 10. broken plugins
UNDECORATED = """
import fubench

class Tidy(fubench.Unlearner):
    name = "tidy"
    def unlearn(self, ctx):
        return ctx.model

def fubench_unlearners():
    return [Tidy]
"""

WRONG_RETURN = """
import fubench

class Lonely(fubench.Unlearner):
    name = "lonely"
    def unlearn(self, ctx):
        return ctx.model

@fubench.hookimpl
def fubench_unlearners():
    return Lonely
"""

GOOD = """
import fubench

class Fine(fubench.Unlearner):
    name = "fine"
    def unlearn(self, ctx):
        return ctx.model

@fubench.hookimpl
def fubench_unlearners():
    return [Fine]
"""


def test_a_broken_plugin_does_not_stop_the_others(fake_distribution, capsys):  # noqa: F811
    fake_distribution(
        "fu-mixed",
        {
            "fu_undecorated": UNDECORATED,
            "fu_wrong": WRONG_RETURN,
            "fu_good": GOOD,
            "fu_typo": "import not_a_module_at_all\n",
        },
        {
            "undecorated": "fu_undecorated",
            "wrong": "fu_wrong",
            "good": "fu_good",
            "typo": "fu_typo",
        },
    )
    assert run_cli("list", "methods") == 0
    captured = capsys.readouterr()
    assert re.search(r"^  fine ", captured.out, re.M), "the good plugin loaded"
    broken = [line for line in captured.err.splitlines() if line.startswith("fubench: plugin")]
    assert len(broken) == 3, broken
    for line in broken:
        assert line.endswith(
            "fix it or `pip uninstall fu-mixed` (FUBENCH_DISABLE_PLUGIN_"
            "AUTOLOAD=1 runs without third-party plugins, FUBENCH_PLUGINS=a,b "
            "with only those)"
        )
    assert run_cli("plugins") == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^undecorated +\[fu-mixed 1\.2\.3\] FAILED: fubench_unlearners lacks", out, re.M
    )
    assert re.search(
        r"^wrong +\[fu-mixed 1\.2\.3\] FAILED: fubench_unlearners\(\) returned", out, re.M
    )
    registry = load_registry()
    with pytest.raises(
        UnknownNameError,
        match="method 'lonely' is unavailable: its plugin failed to load \\(plugin 'wrong'",
    ):
        registry.methods.get("lonely")
    with pytest.raises(
        UnknownNameError, match="method 'typo' is unavailable: its plugin failed to import"
    ):
        registry.methods.get("typo")
    with pytest.raises(
        UnknownNameError, match="plugin\\(s\\) typo, undecorated, wrong failed to load"
    ):
        registry.methods.get("tidy")
    from fubench.testing import cases

    with pytest.raises(fubench.testing.ConformanceError) as info:
        cases("typo", registry)
    assert "failed to import" in str(info.value) and "no loaded plugin" not in str(info.value)


def test_a_name_conflict_stops_commands_but_plugins_shows_it(
    fake_distribution,  # noqa: F811
    capsys,
):
    fake_distribution(
        "fu-twins", {"fu_one": GOOD, "fu_two": GOOD}, {"one": "fu_one", "two": "fu_two"}
    )
    with pytest.raises(
        PluginError, match="method 'fine' is registered by two plugins: 'one' and 'two'"
    ):
        load_registry()
    assert run_cli("list", "methods") == 2
    assert run_cli("plugins") == 0
    out = capsys.readouterr().out
    assert "CONFLICT: method 'fine' is registered by two plugins: 'one' and 'two'" in out
    assert re.search(r"^one +\[fu-twins 1\.2\.3\] method: fine$", out, re.M)


def test_a_broken_builtin_stays_an_error():
    from fubench.registry import PluginInfo, report_broken

    with pytest.raises(PluginError, match="plugin 'retrain': boom"):
        report_broken(PluginInfo("retrain", "fubench", "0.1", builtin=True), "boom")


# --------------------------------------------------- 11. what the docs promise
def section(title: str) -> str:
    """A section of the plugin-writing guide, whitespace-normalised."""
    return " ".join(doc_section("how-to/write-plugins.md", title).split())


def test_federation_train_returns_the_model_it_trained_in_place(kit):
    ctx = kit.context(kit.stage("backdoor"), Amnesia)
    before = fubench.state_copy(ctx.model)
    assert ctx.federation.train(ctx.model, rounds=1) is ctx.model
    assert any(not torch.equal(before[k], v) for k, v in ctx.model.state_dict().items())
    assert "trains `model` in place and returns that same object" in section(
        "## What a method gets and declares"
    )


def test_retained_participation_includes_a_requesting_client_that_keeps_data(kit):
    backdoor = kit.context(kit.stage("backdoor"), Amnesia).federation
    [malicious] = backdoor.requesting
    assert malicious in backdoor.retained_clients, "its clean samples stay"
    leaving = kit.context(kit.stage("client"), Amnesia).federation
    assert not set(leaving.requesting) & set(leaving.retained_clients)
    text = section("## What a method gets and declares")
    assert "A requesting client that keeps part of its data is included" in text


def test_the_generator_is_on_the_cpu_and_initial_state_is_the_whole_state_dict(kit):
    ctx = kit.context(kit.stage("backdoor"), Amnesia)
    assert ctx.generator.device.type == "cpu"
    assert set(ctx.initial_state) == set(ctx.model.state_dict())
    text = section("## What a method gets and declares")
    assert "`ctx.generator` is a CPU `torch.Generator`" in text
    assert "means the whole `state_dict()`, parameters and buffers" in text


def test_getting_started_says_how_long_and_how_big():
    page = (DOCS / "tutorial" / "getting-started.md").read_text(encoding="utf-8")
    quick = " ".join(page.split())
    assert "takes about 25 minutes" in quick and "about 5 minutes a seed" in quick
    assert "Run again, it takes seconds" in quick
    assert "about 200 MB per seed" in quick and "FUBENCH_CACHE" in quick
    assert "FUBENCH_PROGRESS_INTERVAL" in quick


def test_the_json_of_plugins_lists_conflicts_per_plugin(capsys):
    assert run_cli("plugins", "--json") == 0
    records = json.loads(capsys.readouterr().out)
    assert all(r["conflicts"] == [] for r in records)
