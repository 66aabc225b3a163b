"""Hostile plugins: what a plugin cannot do to a run, whatever it tries.

Every plugin here is a throwaway distribution the tests write (modules and a
``.dist-info`` with entry points, on ``sys.path``), loaded as an installed plugin is:
``FUBENCH_PLUGINS`` picks the ones a test uses. Runs share one model cache, so the
reference models of the tiny scenario are trained once per module."""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import fubench
from fubench import api, evaluation, results
from fubench.fl.federation import Federation
from fubench.plugins import load_registry, reset_registry
from fubench.results import read_result
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """\
version: 1
name: {name}
dataset: {{name: tiny_images, n: 200, test_fraction: 0.3, server_fraction: 0.1}}
model: {{name: {model}}}
federation: {{clients: 3, rounds: {rounds}, batch_size: 32, lr: 0.05, momentum: 0.9}}
scenario: {{kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}}
methods: {{retrain: {{}}, finetune: {{rounds: 1}}}}
{metrics}seeds: [0]
device: cpu
"""

PLUGINS = {
    # the tests' tiny data set, importable by worker processes
    "fu_hostile_data": "from tests.conftest import fubench_datasets  # noqa: F401\n",
    # the data set and a model whose training a delay slows down (to signal a run in it)
    "fu_hostile_slow": "from tests.test_faults import fubench_datasets, FAULT_PLUGIN\n"
    "fubench_models = FAULT_PLUGIN.fubench_models\n",
    # methods that declare participation = "none" and try every way to client data
    "fu_hostile_peek": """
        import fubench

        def peeker(name, peek):
            def unlearn(self, ctx):
                peek(ctx)
                return ctx.model
            attrs = {"name": name, "participation": "none", "unlearn": unlearn}
            return type(name, (fubench.Unlearner,), attrs)

        def from_closure(ctx):
            cells = [c.cell_contents for c in ctx.make_model.__closure__]
            job = next(c for c in cells if hasattr(c, "setup"))
            return job.setup.train[0].x.sum()

        PEEKS = [
            peeker("peek_view", lambda ctx: ctx.federation.view(0).train.x.sum()),
            peeker("peek_setup", lambda ctx: ctx.federation.setup.train[0].x.sum()),
            peeker("peek_vars", lambda ctx: vars(ctx.federation)["setup"].train[0].x.sum()),
            peeker("peek_parts", lambda ctx: ctx.federation._parts("train")[0].x.sum()),
            peeker("peek_closure", from_closure),
            peeker("peek_ask", lambda ctx: ctx.federation.ask(
                [0], lambda model, view: view.train.x.sum(), ctx.model)),
            peeker("peek_train", lambda ctx: ctx.federation.train(ctx.model)),
        ]

        @fubench.hookimpl
        def fubench_unlearners():
            return PEEKS
    """,
    # a method that changes every input it gets in place, and one that fingerprints them
    "fu_hostile_vandal": """
        import hashlib, json, os
        import fubench

        def digest(*tensors):
            h = hashlib.sha256()
            for t in tensors:
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
            return h.hexdigest()[:16]

        class Vandal(fubench.Unlearner):
            name = "vandal"
            needs_history = True

            def unlearn(self, ctx):
                def wreck(model, view):
                    for split in (view.train, view.forget, view.retained):
                        split.x.zero_()
                        split.y.zero_()
                    return 0

                fed = ctx.federation
                fed.ask(range(fed.n_clients), wreck, ctx.model)
                for tensor in [*ctx.initial_state.values(), *ctx.model.state_dict().values()]:
                    tensor.zero_()
                ctx.server_data.zero_()
                for mask in ctx.request.forget_masks.values():
                    mask.zero_()
                for record in ctx.history:
                    record.global_state.zero_()
                attempts = [
                    lambda: setattr(ctx.history, "directory", ctx.history.directory / "gone"),
                    lambda: object.__setattr__(fed.settings, "lr", 99.0),
                ]
                for attempt in attempts:
                    try:
                        attempt()
                    except Exception:
                        pass
                return ctx.model

        class Probe(fubench.Unlearner):
            name = "probe"
            needs_history = True

            def unlearn(self, ctx):
                fed = ctx.federation

                def data(model, view):
                    splits = (view.train, view.forget, view.retained)
                    return digest(*(t for s in splits for t in (s.x, s.y)))

                masks = ctx.request.forget_masks
                prints = {
                    "clients": fed.ask(range(fed.n_clients), data, ctx.model),
                    "initial": digest(*ctx.initial_state.values()),
                    "trained": digest(*ctx.model.state_dict().values()),
                    "server": digest(ctx.server_data),
                    "request": digest(*(masks[c] for c in sorted(masks))),
                    "history": [digest(r.global_state, *r.updates.values()) for r in ctx.history],
                    "settings": repr(fed.settings),
                }
                with open(os.environ["HOSTILE_PROBE"], "a") as f:
                    f.write(json.dumps(prints) + "\\n")
                return ctx.model

        @fubench.hookimpl
        def fubench_unlearners():
            return [Vandal, Probe]
    """,
    # a logging hook that edits what it is shown
    "fu_hostile_editor": """
        import fubench

        @fubench.hookimpl
        def fubench_run_start(scenario, seeds, methods):
            methods.clear()
            seeds.append(99)

        @fubench.hookimpl
        def fubench_method_result(scenario, seed, method, result):
            result["metrics"]["test_acc"] = 1.0
            result["status"] = "failed"
            result["params"]["edited"] = True
    """,
    # methods that try to end the process, one way each
    "fu_hostile_exits": """
        import os, signal, sys
        import fubench

        def method(name, act):
            def unlearn(self, ctx):
                act()
                return ctx.model
            attrs = {"name": name, "participation": "none", "unlearn": unlearn}
            return type(name, (fubench.Unlearner,), attrs)

        def throw(exc):
            raise exc

        @fubench.hookimpl
        def fubench_unlearners():
            return [
                method("amnesia", lambda: None),
                method("exit_zero", lambda: sys.exit(0)),
                method("exit_hard", lambda: os._exit(0)),
                method("interrupt", lambda: throw(KeyboardInterrupt())),
                method("base_error", lambda: throw(BaseException("a plugin's own"))),
                method("killed", lambda: os.kill(os.getpid(), signal.SIGKILL)),
            ]
    """,
    "fu_hostile_import_exit": "import sys\nsys.exit(0)\n",
    "fu_hostile_register_exit": """
        import sys
        import fubench

        @fubench.hookimpl
        def fubench_unlearners():
            sys.exit(0)
    """,
    "fu_hostile_quitter": """
        import sys
        import fubench

        @fubench.hookimpl
        def fubench_method_result(scenario, seed, method, result):
            sys.exit(0)
    """,
    # metrics returning what is no measurement, and models in another dtype or nowhere
    "fu_hostile_metrics": """
        import sys
        import numpy as np
        import torch
        import fubench

        def metric(name, value, percent=False):
            def compute(self, ev):
                return value() if callable(value) else value
            attrs = {"name": name, "compute": compute, "percent": percent}
            return type(name, (fubench.Metric,), attrs)

        class AsFloat64(fubench.Unlearner):
            name = "as_float64"
            participation = "none"

            def unlearn(self, ctx):
                return ctx.model.double()

        class OnMeta(fubench.Unlearner):
            name = "on_meta"
            participation = "none"

            def unlearn(self, ctx):
                return ctx.model.to("meta")

        @fubench.hookimpl
        def fubench_metrics():
            return [
                metric("m_string", "0.5"),
                metric("m_list", [0.5]),
                metric("m_bool", True),
                metric("m_nan", float("nan")),
                metric("m_inf", float("-inf")),
                metric("m_huge", 1e308),
                metric("m_share", 1.5, percent=True),
                metric("m_exit", lambda: sys.exit(0)),
                metric("m_tensor", lambda: torch.tensor([0.25])),
                metric("m_numpy", lambda: np.float32(0.25)),
            ]

        @fubench.hookimpl
        def fubench_unlearners():
            return [AsFloat64, OnMeta]
    """,
    # a plugin whose entry point is named like a built-in's, one taking reserved names
    "fu_hostile_twin": """
        import fubench

        class Twin(fubench.Unlearner):
            name = "twin"

            def unlearn(self, ctx):
                return ctx.model

        @fubench.hookimpl
        def fubench_unlearners():
            return [Twin]
    """,
    "fu_hostile_reserved": """
        import fubench

        class Original(fubench.Unlearner):
            name = "original"

            def unlearn(self, ctx):
                return ctx.model

        @fubench.hookimpl
        def fubench_unlearners():
            return [Original]
    """,
}
#: entry-point names that differ from the module's
ENTRY_NAMES = {"fu_hostile_twin": "finetune", "fu_hostile_slow": "slow"}


def install(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """Write a distribution into ``site``: its modules and a ``.dist-info`` whose entry
    points (``name -> module``) are in the ``fubench`` group."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[fubench]\n{lines}")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The throwaway distribution fu-hostile, one entry point per plugin module."""
    site = tmp_path_factory.mktemp("site")
    names = {m: ENTRY_NAMES.get(m, m.removeprefix("fu_hostile_")) for m in PLUGINS}
    install(site, "fu-hostile", PLUGINS, {names[m]: m for m in PLUGINS})
    return site


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def hostile(site, shared_cache, monkeypatch, tmp_path):
    """Load the plugins named (and the data set) as installed plugins; return a function
    that writes the scenario file."""
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    for name in PLUGINS:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setenv("FUBENCH_CACHE", str(shared_cache))
    monkeypatch.delenv("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread beats contending ones

    def use(*plugins: str, metrics: str = "", rounds: int = 1, model: str = "mnist_cnn") -> Path:
        monkeypatch.setenv("FUBENCH_PLUGINS", ",".join(["data", *plugins]))
        reset_registry()
        path = tmp_path / "hostile.yaml"
        listed = f"metrics: [{metrics}]\n" if metrics else ""
        path.write_text(SCENARIO.format(name="hostile", rounds=rounds, model=model, metrics=listed))
        return path

    yield use
    torch.set_num_threads(threads)
    reset_registry()


#: in this process, one row after the other (the rows share one job)
ONE_JOB = ("--jobs", "1")


def stored(out: Path) -> dict:
    return read_result(out / "hostile" / "seed_0.json")["methods"]


# ------------------------------------------------------- 1. participation, at the data
PEEKS = ["view", "setup", "vars", "parts", "closure", "ask", "train"]


def test_a_method_declared_none_reaches_no_client_data(hostile, tmp_path, capsys):
    scenario = hostile("peek")
    out = tmp_path / "out"
    methods = ",".join(f"peek_{p}" for p in PEEKS)
    assert run_cli("run", str(scenario), "--out", str(out), "--methods", methods, *ONE_JOB) == 1
    rows = stored(out)
    for peek in PEEKS:
        row = rows[f"peek_{peek}"]
        assert row["status"] == "failed", f"peek_{peek} reached client data"
        assert "\n" not in row["error"] and row.get("clients", []) == []
    for forbidden in ("ask", "train"):
        assert "participation='none' but asked client 0" in rows[f"peek_{forbidden}"]["error"]
    assert "federation.ask" in rows["peek_view"]["error"], "it says where data are"


def tensors_reachable(root: object) -> list[torch.Tensor]:
    """Every tensor reachable from ``root`` through attributes (``vars``, slots),
    containers, closures and bound methods — what a plugin author finds by looking at
    what it was given. Module globals, classes, the garbage collector and stack frames
    are not followed: through them Python reaches any object of the process."""
    seen, found, todo = set(), [], [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (types.ModuleType, type, str, bytes)):
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
            continue
        if isinstance(obj, dict):
            todo += list(obj.keys()) + list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo += list(obj)
        if isinstance(obj, types.FunctionType):
            todo += [c.cell_contents for c in obj.__closure__ or ()]
            todo += [obj.__defaults__, obj.__kwdefaults__]
        for name in ("__self__", "__func__", "__wrapped__"):
            if hasattr(obj, name):
                todo.append(getattr(obj, name))
        if hasattr(obj, "__dict__"):
            todo.append(vars(obj))
        for name in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, name):
                todo.append(getattr(obj, name))
    return found


def test_nothing_a_method_is_given_leads_to_client_data(test_registry):
    from fubench.testing import Kit

    kit = Kit(test_registry)
    stage = kit.stage("backdoor")
    ctx = stage.job.context("retrain")  # the gold standard: every client's data
    setup = stage.setup
    splits = [*setup.train, *setup.retained, *setup.eval_sets.values()]
    data = {t.untyped_storage().data_ptr() for s in splits for t in (s.x, s.y)}
    reached = [t for t in tensors_reachable(ctx) if t.untyped_storage().data_ptr() in data]
    assert not reached, f"{len(reached)} tensors of the scenario's data reachable from ctx"
    assert len(tensors_reachable(ctx)) > 10, "the walk reaches the model's weights"
    gc.collect()


def test_a_method_cannot_edit_what_the_federation_counted():
    setup = tiny_setup()
    fed = Federation(setup, fubench.TrainSettings(), 1, 1.0, 0, torch.device("cpu"), "all")
    fed.ask([0, 1], lambda model, view: 0, nn.Linear(4, 2))
    fed.stats.clients_involved.clear()
    with pytest.raises(AttributeError):
        fed.participation = "none"
    assert fed.stats.clients_involved == {0, 1} and fed.stats.rounds == 1


def tiny_setup() -> fubench.ScenarioSetup:
    g = torch.Generator().manual_seed(0)
    train = [fubench.Split(torch.rand(6, 4, generator=g), torch.arange(6) % 2) for _ in range(3)]
    mask = torch.arange(6) < 2
    request = fubench.ForgetRequest((0,), {0: mask})
    retained = [train[0].subset(~mask), *train[1:]]
    return fubench.ScenarioSetup(train, retained, request, {"test": train[2]}, [])


def test_reserved_row_names_match_the_rows():
    assert set(api.RESERVED_NAMES) == {results.ORIGINAL, evaluation.REFERENCE_ROW}


# ------------------------------------------------- 2. every method gets its own inputs
@pytest.mark.training  # starts fubench processes (and workers): not in the fast tier
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_method_that_changes_its_inputs_changes_nothing_for_the_next(
    jobs, hostile, tmp_path, monkeypatch
):
    scenario = hostile("vandal")
    prints = tmp_path / "prints.jsonl"
    monkeypatch.setenv("HOSTILE_PROBE", str(prints))
    alone, after = tmp_path / "alone", tmp_path / "after"
    assert run_cli("run", str(scenario), "--out", str(alone), "--methods", "probe", *ONE_JOB) == 0
    args = ("--out", str(after), "--methods", "vandal,probe", "--jobs", jobs, "-q")
    assert run_cli("run", str(scenario), *args) == 0
    first, second = [json.loads(line) for line in prints.read_text().splitlines()]
    assert first["history"] and first["clients"], "the probe saw data and a history"
    assert second == first
    assert stored(after)["vandal"]["status"] == "ok", "vandalising its own copies is allowed"


# ------------------------------------------------------- 3. hooks observe, never edit
def test_a_hook_that_edits_what_it_is_shown_changes_nothing_stored(hostile, tmp_path):
    scenario = hostile()
    out, edited = tmp_path / "plain", tmp_path / "edited"
    assert run_cli("run", str(scenario), "--out", str(out), *ONE_JOB) == 0
    scenario = hostile("editor")
    assert run_cli("run", str(scenario), "--out", str(edited), *ONE_JOB) == 0
    plain, after = stored(out), stored(edited)
    assert set(after) == {"original", "finetune", "retrain"}, "no method was dropped"
    for label, row in after.items():
        assert row["status"] == "ok" and "edited" not in row["params"]
        assert row["metrics"]["test_acc"] == plain[label]["metrics"]["test_acc"] != 1.0
    result = read_result(edited / "hostile" / "seed_0.json")
    assert result["scenario"]["config"]["seeds"] == [0]


# ------------------------------------------------------------ 4. no silent success
def test_plugin_code_that_ends_the_process_fails_its_row(hostile, tmp_path, capsys):
    scenario = hostile("exits", "quitter")
    out = tmp_path / "out"
    methods = "exit_zero,exit_hard,interrupt,base_error,amnesia"
    assert run_cli("run", str(scenario), "--out", str(out), "--methods", methods, *ONE_JOB) == 1
    rows = stored(out)
    assert rows["amnesia"]["status"] == "ok", "the other rows ran"
    said = {
        "exit_zero": "sys.exit(0) in plugin code",
        "exit_hard": "os._exit(0) in plugin code",
        "interrupt": "KeyboardInterrupt raised by plugin code, not by Ctrl-C",
        "base_error": "BaseException: a plugin's own",
    }
    for method, words in said.items():
        assert rows[method]["status"] == "failed" and words in rows[method]["error"], method
    err = capsys.readouterr().err
    assert "a plugin's fubench_method_result hook failed: sys.exit(0)" in err
    assert "Traceback" not in err


def test_plugins_that_exit_while_loading_are_skipped_with_one_line(hostile, tmp_path, capsys):
    scenario = hostile("import_exit", "register_exit")
    for args in (["list", "methods"], ["validate", str(scenario)]):
        reset_registry()  # each command loads the plugins, as from a shell
        assert run_cli(*args) == 0
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2, err
        assert "plugin 'import_exit' (fu-hostile 0.1) failed to import" in err[0]
        assert "plugin 'register_exit' (fu-hostile 0.1) is broken" in err[1]
        assert all("sys.exit(0) in plugin code" in line for line in err)
    assert run_cli("run", str(scenario), "--out", str(tmp_path / "out"), *ONE_JOB) == 0
    assert set(stored(tmp_path / "out")) == {"original", "finetune", "retrain"}


# ------------------------------------------------------------ 5. metric values checked
def test_a_metric_value_that_is_no_measurement_is_a_recorded_failure(hostile, tmp_path, capsys):
    names = ["m_string", "m_list", "m_bool", "m_nan", "m_inf", "m_huge", "m_share", "m_exit"]
    scenario = hostile("metrics", metrics=", ".join(["test_acc", *names, "m_tensor", "m_numpy"]))
    out = tmp_path / "out"
    args = ("--out", str(out), "--methods", "as_float64,on_meta", *ONE_JOB)
    assert run_cli("run", str(scenario), *args) == 1
    table = capsys.readouterr().out
    rows = stored(out)
    said = {
        "m_string": "returned str '0.5'",
        "m_list": "returned list [0.5]",
        "m_bool": "returned bool True",
        "m_nan": "returned nan (float)",
        "m_inf": "returned -inf (float)",
        "m_huge": "returned 1e+308 (float)",
        "m_share": "returned 1.5 (float); a percent metric is a share",
        "m_exit": "sys.exit(0) in plugin code",
    }
    for label in ("original", "as_float64", "retrain"):
        row = rows[label]
        assert row["status"] == "ok"
        assert row["metrics"]["m_tensor"] == row["metrics"]["m_numpy"] == 0.25
        for metric, words in said.items():
            assert row["metrics"][metric] is None
            assert words in row["metric_errors"][metric], (label, metric)
            assert f"**{label}**: metric {metric} failed" in table
    converted = rows["as_float64"]["metrics"]["test_acc"]
    assert converted is not None and converted == rows["original"]["metrics"]["test_acc"]
    assert rows["on_meta"]["status"] == "failed" and "'meta' device" in rows["on_meta"]["error"]


# ------------------------------------------------------------------------ 7. the rest
def test_an_entry_point_named_like_a_builtin_is_refused_naming_its_distribution(hostile, capsys):
    hostile("finetune")
    registry = load_registry()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        "fubench: plugin 'finetune' (fu-hostile 0.1) is broken and was skipped: its "
        "entry-point name 'finetune' is taken by plugin 'finetune' (fubench "
    ), err
    assert "pip uninstall fu-hostile" in err[0]
    assert "twin" not in registry.methods and "finetune" in registry.methods


def test_a_method_may_not_take_a_reserved_row_name(hostile, tmp_path, capsys):
    scenario = hostile("reserved")
    assert run_cli("list", "methods") == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "plugin 'reserved' (fu-hostile 0.1) is broken" in err[0], err
    assert "the name 'original' is reserved for a row of every table" in err[0]
    args = ("--out", str(tmp_path / "out"), "--methods", "retrain,original")
    assert run_cli("run", str(scenario), *args) == 2
    err = capsys.readouterr().err
    assert "method 'original' is unavailable: its plugin failed to load" in err


def test_tables_are_written_atomically_and_never_through_a_symbolic_link(hostile, tmp_path, capsys):
    scenario = hostile()
    out = tmp_path / "out"
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    table, written = tmp_path / "table.md", tmp_path / "written.md"
    table.symlink_to(precious)
    written.write_text("old")
    inode = written.stat().st_ino
    assert run_cli("run", str(scenario), "--out", str(out), "--table", str(table), *ONE_JOB) == 0
    assert run_cli("table", str(out), "-o", str(written)) == 0
    assert precious.read_text() == "keep me"
    assert not table.is_symlink() and "| finetune" in table.read_text()
    assert written.stat().st_ino != inode, "a new file renamed into place"
    assert "| finetune" in written.read_text()
    table.unlink()
    table.symlink_to(precious)
    assert run_cli("table", str(out), "-o", str(table)) == 0
    assert precious.read_text() == "keep me" and not table.is_symlink()
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left"


# ----------------------------------------------------- runs in processes of their own
class Shell:
    """``fubench`` in fresh processes: the throwaway plugins installed, a cache, and
    a result folder of this test."""

    def __init__(self, site: Path, base: Path, cache: Path, plugins: str):
        self.base, self.out = base, base / "out"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "FUBENCH_PLUGINS": plugins,
            "FUBENCH_CACHE": str(cache),
            "FUBENCH_DATA": str(base / "data"),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
        }
        self.env.pop("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", None)
        self.logs = 0

    def scenario(self, model: str = "mnist_cnn", rounds: int = 1) -> Path:
        path = self.base / "hostile.yaml"
        path.write_text(SCENARIO.format(name="hostile", rounds=rounds, model=model, metrics=""))
        return path

    def start(self, *args: str, delay: float = 0.0) -> tuple[subprocess.Popen, Path]:
        """``fubench ARGS`` in a session of its own (a terminal's Ctrl-C reaches its
        whole process group)."""
        self.logs += 1
        log = self.base / f"run{self.logs}.stderr"
        with open(log, "w") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fubench.cli", *args],
                cwd=self.base,
                stdout=subprocess.DEVNULL,
                stderr=handle,
                env={**self.env, "FUBENCH_FAULT_DELAY": str(delay)},
                start_new_session=True,
            )
        return proc, log

    def when(self, log: Path, proc: subprocess.Popen, text: str) -> None:
        deadline = time.monotonic() + 240
        while text not in log.read_text():
            assert proc.poll() is None, f"it ended before {text!r}: {log.read_text()}"
            assert time.monotonic() < deadline, f"{text!r} never came: {log.read_text()}"
            time.sleep(0.05)

    def result(self) -> dict:
        return stored(self.out)


@pytest.fixture
def shell(site, shared_cache, tmp_path):
    return lambda plugins, cache=shared_cache: Shell(site, tmp_path, cache, plugins)


@pytest.mark.training  # starts fubench processes (and workers): not in the fast tier
def test_a_worker_that_dies_fails_its_rows_and_the_others_finish(shell):
    run = shell("data,exits")
    args = ["--out", str(run.out), "--methods", "killed,exit_hard,finetune", "--jobs", "2"]
    proc, log = run.start("run", str(run.scenario()), *args)
    assert proc.wait(timeout=300) == 1, log.read_text()
    rows, err = run.result(), log.read_text()
    assert rows["finetune"]["status"] == "ok"
    assert rows["killed"]["status"] == "failed"
    assert (
        "worker process died while computing this row (killed by SIGKILL)"
        in (rows["killed"]["error"])
    )
    assert "os._exit(0) in plugin code" in rows["exit_hard"]["error"], "its worker lived on"
    assert "Traceback" not in err and "BrokenProcessPool" not in err, err


@pytest.mark.training  # starts fubench processes (and workers): not in the fast tier
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_interrupts_with_one_line_and_no_worker_traceback(jobs, shell, tmp_path):
    """With ``--jobs 2``, the worker that ran ``amnesia`` waits idle while the other
    fine-tunes (slowly) when Ctrl-C comes."""
    run = shell("slow,exits", cache=tmp_path / "cache")
    args = ["--out", str(run.out), "--methods", "finetune,amnesia", "--jobs", jobs]
    proc, log = run.start("run", str(run.scenario("slow_cnn", rounds=2)), *args, delay=0.3)
    try:
        run.when(log, proc, "seed 0: finetune")
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    assert proc.wait(timeout=120) == 130, log.read_text()
    err = log.read_text()
    assert "fubench: interrupted; results computed so far are saved" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


@pytest.mark.training  # starts fubench processes (and workers): not in the fast tier
def test_sigterm_saves_what_finished_and_exits_143_with_one_line(shell, tmp_path):
    run = shell("slow,exits", cache=tmp_path / "cache")
    args = ["--out", str(run.out), "--methods", "finetune", "--jobs", "1"]
    proc, log = run.start("run", str(run.scenario("slow_cnn", rounds=2)), *args, delay=0.2)
    try:
        run.when(log, proc, "seed 0: finetune")  # the reference rows are stored
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, log.read_text()
    err = log.read_text()
    assert "fubench: terminated (SIGTERM); results computed so far are saved" in err
    assert "Traceback" not in err, err
    assert set(run.result()) == {"original", "retrain"}


@pytest.mark.training  # starts fubench processes (and workers): not in the fast tier
def test_two_runs_into_one_folder_keep_both_runs_rows(shell, tmp_path):
    """``--methods retrain,finetune`` and ``--methods retrain,amnesia`` at the same time:
    both rows stay, and the cache trains each reference model once."""
    run = shell("slow,exits", cache=tmp_path / "cache")
    scenario = str(run.scenario("slow_cnn", rounds=2))
    started = [
        run.start("run", scenario, "--out", str(run.out), "--methods", m, "--jobs", "1", delay=0.05)
        for m in ("retrain,finetune", "retrain,amnesia")
    ]
    for proc, log in started:
        assert proc.wait(timeout=300) == 0, log.read_text()
    logs = "".join(log.read_text() for _, log in started)
    assert logs.count("training the original model") == 1, logs
    assert logs.count("without the forgotten data (the reference)") == 1, logs
    assert set(run.result()) == {"original", "finetune", "amnesia", "retrain"}


@pytest.mark.training  # starts fubench processes (and workers): not in the fast tier
def test_the_kit_passes_no_plugin_that_ends_its_process(site, tmp_path):
    """``python -m fubench.testing`` on methods that call sys.exit(0), os._exit(0),
    raise KeyboardInterrupt, and one (checked last) that kills its own process."""
    env = {**Shell(site, tmp_path, tmp_path / "cache", "exits").env}
    done = subprocess.run(
        [sys.executable, "-m", "fubench.testing", "exits"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line[:1] != " "}
    for method in ("exit_zero", "exit_hard", "interrupt", "base_error"):
        assert "FAILED" in lines[f"method:{method}"], done.stdout
    assert "unlearn(): os._exit(0) in plugin code" in done.stdout
    assert "(fu_hostile_exits.py:" in done.stdout, "it names the plugin's line"
    assert "method:killed" not in lines
    assert done.stderr.strip().splitlines()[-1] == (
        "fubench.testing: error: the checks ended early (killed by signal 9) while "
        "checking method:killed: plugin code ended the process; no check after it ran"
    )
