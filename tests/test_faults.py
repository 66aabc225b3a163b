"""The fault suite: a real ``fubench run`` killed with SIGKILL in each phase (training the
original, the reference, a method, recording the round history), then run again: no
partial or scratch file survives, finished work is reused, and the results equal an
uninterrupted run's. Corrupted cache entries and result files are named on one line and
rebuilt; a disk that fails mid-run gives one line and exit 3, not a traceback."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import fubench
import fubench.engine.cache
import fubench.results
from fubench.plugins import load_registry, reset_registry
from fubench.results import read_result, umask
from tests.conftest import fubench_datasets, run_cli

ROOT = Path(__file__).resolve().parent.parent
#: seconds a training forward pass sleeps in a run that is to be killed: every phase
#: then lasts seconds, so a kill half a second into it lands inside it
DELAY = 0.2
#: metrics that measure time, not the model
TIMINGS = {"seconds", "rtr"}


class Slow(nn.Module):
    """Sleeps ``$FUBENCH_FAULT_DELAY`` seconds in every training step; same numbers."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        delay = float(os.environ.get("FUBENCH_FAULT_DELAY") or 0)
        if self.training and delay:
            time.sleep(delay)
        return self.inner(x)


class SlowCNN(fubench.ModelFactory):
    """A small CNN whose training can be slowed down, so a kill lands inside a phase."""

    name = "slow_cnn"

    def build(self, input_shape, n_classes):
        c, h, w = input_shape
        return Slow(
            nn.Sequential(
                nn.Conv2d(c, 4, 3, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(4 * h * w, n_classes),
            )
        )


#: the plugin the runs use: the tests' data set and the slow model; fresh processes
#: load it through an entry point (``tests.test_faults:FAULT_PLUGIN``)
FAULT_PLUGIN = types.ModuleType("fubench_fault_plugin")
FAULT_PLUGIN.fubench_datasets = fubench_datasets
FAULT_PLUGIN.fubench_models = fubench.hookimpl(lambda: [SlowCNN])

SCENARIO = """\
version: 1
name: {name}
dataset: {{name: tiny_images, n: 200, test_fraction: 0.3}}
model: {{name: slow_cnn}}
federation: {{clients: 3, rounds: {rounds}, batch_size: 32, lr: 0.05, momentum: 0.9}}
scenario: {{kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}}
methods: {methods}
seeds: [0]
device: cpu
"""

#: name -> (rounds, methods)
SCENARIOS = {
    "plain": (2, "{retrain: {}, finetune: {rounds: [1, 2]}}"),
    "history": (3, "{retrain: {}, fedrecovery: {}}"),
}


class Env:
    """A place to run ``fubench`` in fresh processes: the plugin installed through an
    entry point, and a private cache, data and result folder."""

    def __init__(self, base: Path):
        self.base = base
        site = base / "site"
        info = site / "fubench_fault_plugin-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: fubench-fault-plugin\nVersion: 0.1\n"
        )
        (info / "entry_points.txt").write_text(
            "[fubench]\nfault = tests.test_faults:FAULT_PLUGIN\n"
        )
        self.cache, self.out = base / "cache", base / "out"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "FUBENCH_PLUGINS": "fault",
            "FUBENCH_CACHE": str(self.cache),
            "FUBENCH_DATA": str(base / "data"),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
        }  # tiny models: threads only contend
        self.env.pop("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", None)
        self.files = {}
        for name, (rounds, methods) in SCENARIOS.items():
            path = base / f"{name}.yaml"
            path.write_text(SCENARIO.format(name=name, rounds=rounds, methods=methods))
            self.files[name] = path
        self.runs = 0

    def start(
        self, scenario: str, delay: float = 0.0, args: tuple[str, ...] = ()
    ) -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        log = self.base / f"run{self.runs}.stderr"
        handle = open(log, "w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fubench.cli",
                "run",
                str(self.files[scenario]),
                "--out",
                str(self.out),
                *args,
            ],
            cwd=self.base,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env={**self.env, "FUBENCH_FAULT_DELAY": str(delay)},
        )
        handle.close()
        return proc, log

    def run(self, scenario: str) -> str:
        proc, log = self.start(scenario)
        assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
        return log.read_text()

    def kill_when(self, scenario: str, ready) -> str:
        """Start a slowed-down run, SIGKILL it half a second after ``ready(stderr)``
        says the phase began; return its stderr."""
        proc, log = self.start(scenario, DELAY)
        deadline = time.monotonic() + 240
        try:
            while not ready(log.read_text()):
                assert proc.poll() is None, f"it ended before the phase: {log.read_text()}"
                assert time.monotonic() < deadline, f"the phase never came: {log.read_text()}"
                time.sleep(0.05)
            time.sleep(0.5)
            assert proc.poll() is None, f"it ended before the kill: {log.read_text()}"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        return log.read_text()

    def result(self, scenario: str) -> dict:
        return read_result(self.out / scenario / "seed_0.json")

    def entries(self) -> list[Path]:
        return sorted(self.cache.glob("*.pt"))

    def scratch(self) -> list[Path]:
        return [
            p for folder in (self.cache, self.out) if folder.exists() for p in folder.rglob("*.tmp")
        ]


def rows(result: dict) -> dict:
    """What the rows computed, timings aside."""
    return {
        label: (row["status"], {k: v for k, v in row["metrics"].items() if k not in TIMINGS})
        for label, row in result["methods"].items()
    }


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """Each scenario run once, uninterrupted, in its own folders."""
    env = Env(tmp_path_factory.mktemp("baseline"))
    runs = " or ".join(
        f"main(['run', {str(env.files[name])!r}, '--out', {str(env.out)!r}])" for name in SCENARIOS
    )
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\nfrom fubench.cli import main\nsys.exit({runs})"],
        cwd=env.base,
        env=env.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: rows(env.result(name)) for name in SCENARIOS}


@pytest.mark.training
def test_kill_9_in_each_phase_then_rerun(baseline, tmp_path):
    """One folder, four processes: killed while training the original, killed (after
    training it again) while training the reference, killed while running the second
    method, then run to the end. Each run resumes what the previous one finished."""
    env = Env(tmp_path)
    result_file = env.out / "plain" / "seed_0.json"

    log = env.kill_when("plain", lambda log: "seed 0: training the original model" in log)
    assert not env.entries() and not result_file.exists(), "killed inside the original"

    log = env.kill_when("plain", lambda log: "(the reference)" in log)
    assert "training the original model" in log, "the unfinished original is trained again"
    assert len(env.entries()) == 1 and not result_file.exists(), "killed inside the reference"

    log = env.kill_when("plain", lambda log: "seed 0: finetune[rounds=2]" in log)
    assert "original model from cache" in log and "(the reference)" in log, log
    assert len(env.entries()) == 2
    assert set(env.result("plain")["methods"]) == {"original", "retrain", "finetune[rounds=1]"}, (
        "killed in a method"
    )

    log = env.run("plain")
    assert "original model from cache" in log and "reference from cache" in log, log
    assert "  1 row reused from " in log and "-v lists them" in log, log
    assert not env.scratch(), env.scratch()
    assert len(env.entries()) == 2
    assert rows(env.result("plain")) == baseline["plain"]


@pytest.mark.training
def test_kill_9_while_recording_the_history_then_rerun(baseline, tmp_path):
    env = Env(tmp_path)

    def recorded_a_round(_: str) -> bool:
        return any(env.cache.glob(".*.history.tmp/round_00000.pt"))

    env.kill_when("history", recorded_a_round)
    leaked = list(env.cache.glob(".*.history.tmp"))
    assert leaked and not env.entries(), "the kill must land while the history is recorded"

    log = env.run("history")
    assert "training the original model" in log
    assert not any(p.exists() for p in leaked), "the killed run's scratch survived"
    assert not env.scratch(), env.scratch()
    histories = list(env.cache.glob("*.history"))
    assert len(histories) == 1 and len(list(histories[0].glob("round_*.pt"))) == 3
    assert env.result("history")["methods"]["fedrecovery"]["status"] == "ok"
    assert rows(env.result("history")) == baseline["history"]


def workers_of(pid: int) -> list[int]:
    """The worker processes ``pid`` spawned (not multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.training
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_workers_end_when_the_run_is_killed(tmp_path):
    """kill -9 of a ``--jobs 2`` run leaves no worker training on for nothing."""
    env = Env(tmp_path)
    proc, log = env.start("plain", DELAY, ("--jobs", "2", "--seeds", "0,1"))
    deadline = time.monotonic() + 240
    try:
        while (
            not (workers := workers_of(proc.pid)) or "training the original" not in log.read_text()
        ):
            assert proc.poll() is None, f"it ended before the kill: {log.read_text()}"
            assert time.monotonic() < deadline, f"no workers came: {log.read_text()}"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "workers of a killed run went on"


# ---------------------------------------------------------------- in-process faults
@pytest.fixture
def fault_registry():
    """The plugin, in this process; one thread, as in the subprocesses (a tiny model
    trains several times faster on one thread than on contending ones)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    registry = load_registry(extra_plugins=[FAULT_PLUGIN])
    reset_registry(registry)
    yield registry
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_run(fault_registry, tmp_path, capsys):
    """Run the plain scenario in-process; return (rc, stderr, result or None)."""
    scenario = tmp_path / "plain.yaml"
    rounds, methods = SCENARIOS["plain"]
    scenario.write_text(SCENARIO.format(name="plain", rounds=rounds, methods=methods))
    out = tmp_path / "out"

    def run(*extra: str) -> tuple[int, str, dict | None]:
        rc = run_cli("run", str(scenario), "--out", str(out), *extra)
        err = capsys.readouterr().err
        path = out / "plain" / "seed_0.json"
        return rc, err, read_result(path) if path.exists() else None

    run.out = out
    run.scenario = scenario
    return run


def cache_dir() -> Path:
    return Path(os.environ["FUBENCH_CACHE"])


def one_line_naming(err: str, path: Path, *words: str) -> str:
    """The one stderr line that names ``path`` and says ``words``."""
    lines = [line for line in err.splitlines() if str(path) in line and words[0] in line]
    assert len(lines) == 1, err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.mark.parametrize("damage", ["truncated", "wrong-shape", "not-a-dict", "empty"])
def test_a_corrupt_cache_entry_is_named_and_rebuilt(damage, tiny_run):
    rc, _, first = tiny_run()
    assert rc == 0
    entries = sorted(cache_dir().glob("*.pt"))
    assert len(entries) == 2
    for entry in entries:
        if damage == "truncated":
            entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
        elif damage == "wrong-shape":
            torch.save({"state": {"w": torch.zeros(1)}, "meta": 1}, entry)
        elif damage == "not-a-dict":
            torch.save([1, 2, 3], entry)
        else:
            entry.write_bytes(b"")
    rc, err, again = tiny_run()
    assert rc == 0 and "Traceback" not in err
    for entry in entries:
        one_line_naming(err, entry, "unreadable", "rebuilding")
        assert fubench.engine.cache.ModelCache().get(entry.stem) is not None
    assert rows(again) == rows(first)


@pytest.mark.parametrize(
    "damage, words",
    [
        ("weights-edited", "does not match its checksum"),
        ("nan-weights", "holds non-finite values"),
        ("other-shape", "does not fit the model"),
        ("other-dtype", "does not fit the model"),
    ],
)
def test_a_cache_entry_that_is_no_longer_what_was_trained_is_named_and_rebuilt(
    damage, words, tiny_run
):
    """Well-formed entries whose weights were changed after training: a checksum, the
    weights' finiteness and their fit to the model are checked before use."""
    from fubench.engine.cache import state_checksum

    rc, _, first = tiny_run()
    assert rc == 0
    entries = sorted(cache_dir().glob("*.pt"))
    for entry in entries:
        data = torch.load(entry, weights_only=True)
        name = next(k for k, v in data["state"].items() if v.is_floating_point())
        tensor = data["state"][name]
        if damage == "weights-edited":  # the checksum is left as it was
            data["state"][name] = tensor + 1.0
        elif damage == "nan-weights":
            data["state"][name] = torch.full_like(tensor, float("nan"))
        elif damage == "other-shape":
            data["state"][name] = torch.zeros(*tensor.shape, 2)
        else:
            data["state"][name] = tensor.double()
        if damage != "weights-edited":  # as if written so: only the content is wrong
            data["checksum"] = state_checksum(data["state"])
        torch.save(data, entry)
    rc, err, again = tiny_run()
    assert rc == 0 and "Traceback" not in err
    for entry in entries:
        one_line_naming(err, entry, words, "rebuilding")
    assert rows(again) == rows(first)


@pytest.mark.parametrize("damage", ["truncated", "a-list", "rows-broken", "binary"])
def test_a_corrupt_result_file_is_named_and_rebuilt(damage, tiny_run):
    rc, _, first = tiny_run()
    path = tiny_run.out / "plain" / "seed_0.json"
    text = path.read_text()
    broken = {
        "truncated": text[: len(text) // 2],
        "a-list": "[]",
        "rows-broken": json.dumps({**first, "methods": {"finetune": "fast"}}),
    }
    if damage == "binary":
        path.write_bytes(b"\x00\xff\xfe\x89")
    else:
        path.write_text(broken[damage])
    rc, err, again = tiny_run()
    assert rc == 0 and "Traceback" not in err
    one_line_naming(err, path, "unreadable", "afresh")
    assert "reused" not in err
    assert rows(again) == rows(first)
    # and reports name a corrupt file instead of failing somewhere inside
    path.write_text(broken["truncated"])
    assert run_cli("table", str(path)) == 2


def test_an_incomplete_history_is_recorded_again(fault_registry, tmp_path, capsys):
    scenario = tmp_path / "history.yaml"
    rounds, methods = SCENARIOS["history"]
    scenario.write_text(SCENARIO.format(name="history", rounds=rounds, methods=methods))
    out = str(tmp_path / "out")
    assert run_cli("run", str(scenario), "--out", out) == 0
    first = read_result(Path(out) / "history" / "seed_0.json")
    history = next(cache_dir().glob("*.history"))
    last = sorted(history.glob("round_*.pt"))[-1]
    last.unlink()
    capsys.readouterr()
    assert run_cli("run", str(scenario), "--out", out, "--fresh") == 0
    err = capsys.readouterr().err
    one_line_naming(err, history, f"holds {rounds - 1} of {rounds} rounds")
    assert last.exists() and "training the original model" in err
    assert rows(read_result(Path(out) / "history" / "seed_0.json")) == rows(first)


def test_stale_scratch_is_swept_and_live_scratch_kept(tiny_run):
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    stale_history = cache / ".0123456789abcdef.history.tmp"
    stale_history.mkdir()
    (stale_history / "round_00000.pt").write_bytes(b"x" * 1000)
    stale_entry = cache / ".fedcba9876543210.12345.tmp"
    stale_entry.write_bytes(b"partial")
    folder = tiny_run.out / "plain"
    folder.mkdir(parents=True)
    old_result_tmp = folder / ".seed_0.json.abc123.tmp"
    old_result_tmp.write_text('{"schema": 1, "meth')
    os.utime(old_result_tmp, (time.time() - 3600,) * 2)
    fresh_result_tmp = folder / ".seed_1.json.def456.tmp"  # maybe another run's, writing
    fresh_result_tmp.write_text("{")
    # an entry whose lock a live process holds is not touched
    import fcntl

    live = cache / ".aaaabbbbccccdddd.history.tmp"
    live.mkdir()
    with open(cache / ".aaaabbbbccccdddd.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rc, _, _ = tiny_run()
    assert rc == 0
    assert not stale_history.exists() and not stale_entry.exists()
    assert not old_result_tmp.exists() and fresh_result_tmp.exists()
    assert live.exists()


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_result_files_follow_the_umask(mask, tiny_run):
    previous = os.umask(mask)
    try:
        assert umask() == mask
        rc, _, _ = tiny_run()
    finally:
        os.umask(previous)
    assert rc == 0
    mode = (tiny_run.out / "plain" / "seed_0.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~mask


def test_a_disk_that_fills_up_mid_run_is_one_line(tiny_run, monkeypatch):
    def full(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half an entry")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(fubench.engine.cache.torch, "save", full)
    rc, err, _ = tiny_run()
    assert rc == 3, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("fubench: error: the run stopped: No space left on device")
    assert "rerun" in line and "Traceback" not in err
    assert not list(cache_dir().glob("*.tmp")) and not list(cache_dir().glob("*.pt"))


def test_a_torch_write_failure_on_a_full_disk_is_one_line(tiny_run, monkeypatch):
    """torch reports a full disk as a RuntimeError; the run names the full disk."""
    from collections import namedtuple

    from fubench import preflight

    def failing(obj, path, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(fubench.engine.cache.torch, "save", failing)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    rc, err, _ = tiny_run()
    assert rc == 3, err
    assert "is full" in err.strip().splitlines()[-1] and "Traceback" not in err


def test_a_bug_still_shows_its_traceback(tiny_run, monkeypatch):
    """Only the machine's failures are turned into one line; a bug is not hidden."""

    def buggy(obj, path, *args, **kwargs):
        raise RuntimeError("a bug in fubench")

    monkeypatch.setattr(fubench.engine.cache.torch, "save", buggy)
    with pytest.raises(RuntimeError, match="a bug in fubench"):
        tiny_run()


@pytest.mark.parametrize("hang_at", [0, 1, 2])
def test_a_git_timeout_never_ends_in_a_traceback(hang_at, monkeypatch):
    real = subprocess.run
    calls = []

    def run(args, *a, **kw):
        calls.append(args)
        if len(calls) - 1 == hang_at:
            raise subprocess.TimeoutExpired(args, kw.get("timeout"))
        return real(args, *a, **kw)

    monkeypatch.setattr(fubench.results.subprocess, "run", run)
    assert fubench.results.git_hash() is None  # timed out, or git gave no hash before
    assert "git_hash" in fubench.results.provenance(torch.device("cpu"), {})


def test_writing_the_table_fails_late_on_one_line(tiny_run, tmp_path, monkeypatch):
    table = tmp_path / "table.md"
    real = os.replace

    def replace(src, dst, *args, **kwargs):  # the table is written atomically: fail its rename
        if Path(dst) == table:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    rc, err, result = tiny_run("--table", str(table))
    assert rc == 3 and result is not None, err
    assert "Read-only file system" in err.strip().splitlines()[-1]
