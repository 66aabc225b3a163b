"""Running at scale: counted work, reproducible numbers across thread counts and
executors (worker processes, Ray), the reference timed on this hardware, shared sweep
work, and the command-line switches."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from fubench import Federation, ForgetRequest, ScenarioSetup, Split, TrainSettings
from fubench import data as datasets
from fubench.config.validate import apply_overrides, load_scenario
from fubench.engine import determinism, worklist
from fubench.engine.cache import ModelCache
from fubench.engine.job import Job
from fubench.engine.plan import Plan
from fubench.fl.federation import counting_server_work
from fubench.fl.flops import WorkMeter, training_flops_per_sample
from fubench.plugins import get_registry, load_registry, reset_registry
from fubench.results import hardware, read_result
from fubench.runner import Runner
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
TIMES = ("seconds", "rtr")

#: the scenario the executors run: the MNIST CNN (convolutions and matrix products, the
#: operations whose sums depend on threads unless the CPU is in its reproducible mode),
#: on the synthetic test images, which workers load from an importable plugin module
SMALL = """\
version: 1
name: small
dataset: {name: tiny_images, test_fraction: 0.3}
model: {name: mnist_cnn}
federation: {clients: 3, partition: {name: iid}, rounds: 2, local_epochs: 1,
             batch_size: 32, lr: 0.05, momentum: 0.9}
scenario: {kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}
methods:
  retrain: {}
  finetune: {rounds: 1}
  tis_reset: {gamma: [0.1, 0.5], curvature: ggn_mc}
  random_reset: {gamma: [0.1, 0.5]}
seeds: [0, 1]
device: cpu
"""


def scale_registry():
    registry = load_registry(extra_plugins=[importlib.import_module("tests.scale_plugin")])
    reset_registry(registry)
    return registry


def numbers(out: Path) -> dict:
    """Every row's metrics (timings aside) and FLOPs, by seed and row."""
    found = {}
    for path in sorted(out.rglob("seed_*.json")):
        result = read_result(path)
        found[result["seed"]] = {
            label: ({k: v for k, v in row["metrics"].items() if k not in TIMES}, row.get("flops"))
            for label, row in result["methods"].items()
        }
    return found


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small scenario run serially in this process with 2 torch threads: the
    reference every executor must reproduce bit for bit."""
    folder = tmp_path_factory.mktemp("small")
    path = folder / "small.yaml"
    path.write_text(SMALL)
    registry = scale_registry()
    threads = torch.get_num_threads()
    try:
        Runner(
            load_scenario(path, registry),
            registry,
            out=folder / "serial",
            cache=ModelCache(folder / "cache"),
            threads=2,
        ).run()
    finally:
        torch.set_num_threads(threads)
    return path, numbers(folder / "serial")


# ------------------------------------------------------------------------ work
def linear_setup(n: int = 12, features: int = 6) -> ScenarioSetup:
    g = torch.Generator().manual_seed(0)
    data = [
        Split(torch.randn(n, features, generator=g), torch.randint(0, 3, (n,), generator=g))
        for _ in range(2)
    ]
    return ScenarioSetup(data, data, ForgetRequest((0,), {}), {"test": data[0]}, ["test_acc"])


def test_training_work_is_samples_times_one_samples_flops():
    setup = linear_setup()
    fed = Federation(
        setup,
        TrainSettings(epochs=3, batch_size=5),
        rounds=2,
        client_fraction=1.0,
        seed=0,
        device=torch.device("cpu"),
    )
    fed.train(nn.Linear(6, 3), data="train")
    # forward 2·6·3 per sample, backward for the weight 2·6·3 (inputs need no gradient)
    assert fed.client_work == 2 * 3 * (12 + 12) * (4 * 6 * 3)
    assert fed.server_work == 0


def test_asked_and_server_work_are_counted_as_they_run():
    fed = Federation(linear_setup(), TrainSettings(), 1, 1.0, 0, torch.device("cpu"))
    with counting_server_work(fed):
        torch.randn(4, 5) @ torch.randn(5, 7)  # 2·4·5·7 on the server
        fed.ask([0, 1], lambda m, c: m(c.train.x), nn.Linear(6, 3))  # 2·12·6·3 each
    assert fed.server_work == 2 * 4 * 5 * 7
    assert fed.client_work == 2 * (2 * 12 * 6 * 3)


def test_counting_one_sample_leaves_the_model_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    data = Split(torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 0, 1]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert training_flops_per_sample(model, data) > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_meter_phases_do_not_count_twice():
    meter = WorkMeter()
    with meter.phase("server"):
        torch.ones(2, 3) @ torch.ones(3, 4)
        with meter.phase("clients"):
            torch.ones(2, 3) @ torch.ones(3, 4)
            with meter.phase(None):
                torch.ones(2, 3) @ torch.ones(3, 4)
    assert meter.counts == {"server": 48, "clients": 48}


def test_every_row_has_work_identical_across_runs(test_registry, backdoor_yaml, tmp_path):
    config = load_scenario(backdoor_yaml(), test_registry)
    rows = []
    for i in range(2):
        out = Runner(
            config, test_registry, out=tmp_path / str(i), cache=ModelCache(enabled=False)
        ).run()[0]
        rows.append(read_result(out)["methods"])
    for label, row in rows[0].items():
        assert row["metrics"]["work"] > 0 and row["metrics"]["work_ratio"] > 0
        assert row["metrics"]["work"] == rows[1][label]["metrics"]["work"]
        assert row["metrics"]["work_ratio"] == rows[1][label]["metrics"]["work_ratio"]
        assert row["flops"] == rows[1][label]["flops"]
    assert rows[0]["retrain"]["metrics"]["work_ratio"] == 1.0
    # finetune (1 round) and retrain (2 rounds) train on the same retained data
    assert rows[0]["finetune"]["metrics"]["work_ratio"] == pytest.approx(0.5)


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_scenario_gives_every_row_work(path):
    registry = get_registry()
    plan = Plan.from_config(load_scenario(path, registry), registry, "cpu")
    assert {"work", "work_ratio"} <= set(plan.row_metrics(["test_acc"]))


# ------------------------------------------------------------------ sweep sharing
def test_a_gamma_sweep_computes_the_curvature_once(
    test_registry, write_yaml, tmp_path, monkeypatch
):
    import fubench_builtins.tis_reset as tis

    calls = []
    original = tis.client_curvature

    def counted(*args, **kwargs):  # and slowed: the shared pass takes >= 0.9 s in all
        calls.append(1)
        time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(tis, "client_curvature", counted)
    yaml = """\
        version: 1
        name: sweep
        dataset: {name: tiny_images, test_fraction: 0.3}
        model: {name: mlp}
        federation: {clients: 3, rounds: 1, batch_size: 32, lr: 0.05}
        scenario: {kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}
        methods:
          retrain: {}
          tis_reset: {gamma: GAMMAS, curvature: ggn_exact}
          random_reset: {gamma: GAMMAS}
        seeds: [0]
        device: cpu
        """
    swept = write_yaml(yaml.replace("GAMMAS", "[0.1, 0.5, 0.9]"), "swept.yaml")
    rows = read_result(
        Runner(load_scenario(swept, test_registry), test_registry, out=tmp_path / "swept").run()[0]
    )["methods"]
    assert len(calls) == 3, "one curvature pass per client, not per sweep point"
    points = [rows[f"tis_reset[gamma={g}]"] for g in (0.1, 0.5, 0.9)]
    assert len({json.dumps(p["flops"]) for p in points}) == 1 and points[0]["flops"]["clients"] > 0
    # each point is charged the shared pass's time, measured when it ran (a bound, not a
    # comparison of timings: the pass sleeps 3 x 0.3 s)
    assert all(p["seconds"] >= 0.9 for p in points), [p["seconds"] for p in points]
    # and computes what it computes alone
    alone = write_yaml(yaml.replace("GAMMAS", "0.5"), "alone.yaml")
    single = read_result(
        Runner(load_scenario(alone, test_registry), test_registry, out=tmp_path / "alone").run()[0]
    )["methods"]
    for name in ("tis_reset", "random_reset"):
        own = {k: v for k, v in single[name]["metrics"].items() if k not in TIMES}
        shared = {k: v for k, v in rows[f"{name}[gamma=0.5]"]["metrics"].items() if k not in TIMES}
        assert own == shared


def test_shared_asks_are_charged_in_full():
    setup = linear_setup()
    shared: dict = {}
    feds = [
        Federation(setup, TrainSettings(), 1, 1.0, 0, torch.device("cpu"), shared=shared)
        for _ in range(2)
    ]
    model = nn.Linear(6, 3)
    answers = [
        fed.ask([0, 1], lambda m, c: m(c.train.x).sum(0), model, share="sum") for fed in feds
    ]
    assert torch.equal(answers[0][0], answers[1][0])
    assert feds[0].stats.bytes == feds[1].stats.bytes and feds[1].client_work > 0
    assert feds[0].client_work == feds[1].client_work and feds[1].stats.rounds == 1
    assert feds[1].stats.replayed_seconds > 0 and feds[0].stats.replayed_seconds == 0
    other = Federation(setup, TrainSettings(), 1, 1.0, 0, torch.device("cpu"), shared=shared)
    changed = nn.Linear(6, 3)  # another model: not the same computation
    other.ask([0, 1], lambda m, c: m(c.train.x).sum(0), changed, share="sum")
    assert other.stats.replayed_seconds == 0


# ---------------------------------------------------------------- reproducibility
def test_this_process_runs_in_the_reproducible_mode():
    determinism.configure()
    settings = determinism.settings(torch.device("cpu"))
    assert settings["mkl_cbwr"] == "AUTO,STRICT" and settings["mkldnn"] is False
    assert settings["bitwise_reproducible"].startswith("yes")


@pytest.mark.training
def test_worker_processes_reproduce_a_serial_run(small, tmp_path, monkeypatch, capsys):
    """2 worker processes with 1 thread each, a cold cache of their own: the same bits
    as the serial run with 2 threads. The workers' periodic progress lines reach this
    process's display (a long reference training is not silent)."""
    path, serial = small
    registry = scale_registry()
    monkeypatch.setenv("FUBENCH_PROGRESS_INTERVAL", "0")
    Runner(
        load_scenario(path, registry),
        registry,
        out=tmp_path / "jobs",
        cache=ModelCache(tmp_path / "cache"),
        jobs=2,
        threads=1,
    ).run()
    assert numbers(tmp_path / "jobs") == serial
    err = capsys.readouterr().err
    assert re.search(r"^seed \d original: round \d+/\d+", err, re.M), err[-2000:]
    result = read_result(tmp_path / "jobs" / "small" / "seed_0.json")
    assert result["provenance"]["determinism"]["torch_threads"] == 1
    spincount = os.environ.get("GOMP_SPINCOUNT", "unset")
    assert result["provenance"]["determinism"]["gomp_spincount"] == spincount


@pytest.mark.parametrize(
    "given, expected",
    [
        ({}, {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"}),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}),
        ({"GOMP_SPINCOUNT": "50"}, {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "50"}),
    ],
)
def test_import_fubench_bounds_openmp_spinning_unless_the_user_chose(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, os, fubench; print(json.dumps({k: os.environ.get(k) for k in "
            "('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')}))",
        ],
        env={**env, **given},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout) == expected


@pytest.mark.training
def test_replicas_in_worker_processes_give_the_serial_epsilon_statistics(small, tmp_path):
    """``fubench quality --jobs 2``: replicas side by side in 2 worker processes, each
    with a cold cache of its own, give every row's forget-set statistics of the same
    replicas run one after the other here, in replica order."""
    from fubench.engine.replicas import run_replicas
    from fubench.executors.replicas import ReplicaPool

    path, _ = small
    registry = scale_registry()
    config = load_scenario(path, registry)
    plan = Plan.from_config(config, registry, "cpu")
    data = datasets.load(config, registry)
    threads = torch.get_num_threads()
    try:
        determinism.configure(1)  # a worker's thread count
        here = run_replicas(plan, data, 0, 3, ModelCache(tmp_path / "here"))
    finally:
        torch.set_num_threads(threads)
    pool = ReplicaPool(config, 2, "cpu", str(tmp_path / "there"), plugins=("tests.scale_plugin",))
    finished: list[tuple[int, int]] = []
    there = run_replicas(
        plan, data, 0, 3, on_replica=lambda n, k: finished.append((n, k)), elsewhere=pool
    )
    assert finished == [(1, 3), (2, 3), (3, 3)]
    assert there.seeds == here.seeds and len(set(here.seeds)) == 3
    assert there.status == here.status and there.examples == here.examples > 0
    assert (
        set(there.stats)
        == set(here.stats)
        == {
            "original",
            "retrain",
            "finetune",
            *(f"{m}[gamma={g}]" for m in ("tis_reset", "random_reset") for g in (0.1, 0.5)),
        }
    )
    for row in here.stats:
        assert torch.equal(torch.as_tensor(there.matrix(row)), torch.as_tensor(here.matrix(row))), (
            row
        )


@pytest.mark.training
def test_ray_reproduces_a_serial_run(small, tmp_path):
    ray = pytest.importorskip("ray")
    path, serial = small
    registry = scale_registry()
    # Ray workers do not inherit this process's import path: give them the repository's,
    # so they import the hand-loaded plugin module (and fubench) as they would anywhere
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    try:
        Runner(
            load_scenario(path, registry),
            registry,
            out=tmp_path / "ray",
            cache=ModelCache(tmp_path / "cache"),
            executor="ray",
        ).run()
    finally:
        ray.shutdown()
    assert numbers(tmp_path / "ray") == serial


def test_plugins_living_only_here_run_here(test_registry, backdoor_yaml, tmp_path, capsys):
    # two seeds: two tasks, which would go to worker processes
    config = apply_overrides(
        load_scenario(backdoor_yaml(), test_registry), seeds=[0, 1], registry=test_registry
    )
    out = Runner(config, test_registry, out=tmp_path, jobs=2).run()[0]
    assert "exist only in this process" in capsys.readouterr().err
    assert read_result(out)["methods"]["finetune"]["status"] == "ok"


# ---------------------------------------------------------------------- timings
def timed_on(entry) -> dict[str, float]:
    """Where a cached reference was timed, on a quiet or a contended machine."""
    return {**entry.timings, **entry.contended_timings}


def test_the_reference_is_timed_on_this_hardware(test_registry, backdoor_yaml, tmp_path, capsys):
    config = load_scenario(backdoor_yaml(), test_registry)
    cache = ModelCache(tmp_path / "cache")
    Runner(config, test_registry, out=tmp_path / "a", cache=cache).run()
    key = Job(
        Plan.from_config(config, test_registry, "cpu"), datasets.load(config, test_registry), 0
    ).cache_key("reference")
    entry = cache.get(key)
    here = hardware(torch.device("cpu"))
    assert set(timed_on(entry)) == {here}  # quiet or contended, as the machine was
    entry.timings, entry.contended_timings = {"another machine, 64 threads": 1.0}, {}
    cache.put(key, entry)
    capsys.readouterr()
    result = read_result(Runner(config, test_registry, out=tmp_path / "b", cache=cache).run()[0])
    assert "training it again to time it" in capsys.readouterr().err
    assert "other weights" not in capsys.readouterr().err
    assert result["methods"]["retrain"]["timed_on"] == here
    assert set(timed_on(cache.get(key))) == {"another machine, 64 threads", here}
    Runner(config, test_registry, out=tmp_path / "c", cache=cache).run()
    assert "training it again" not in capsys.readouterr().err
    Runner(config, test_registry, out=tmp_path / "d", cache=cache, retime=True).run()
    assert "training it again to time it" in capsys.readouterr().err
    # what needs only the models (the attention maps) never trains one again to time it
    entry = cache.get(key)
    entry.timings, entry.contended_timings = {"another machine, 64 threads": 1.0}, {}
    cache.put(key, entry)
    plan = Plan.from_config(config, test_registry, "cpu")
    plan.timed = False
    Job(plan, datasets.load(config, test_registry), 0, cache).references()
    err = capsys.readouterr().err
    assert "reference from cache" in err and "training it again" not in err
    # nor does the forgetting-quality ε (replica 0 is the seed's own cached job)
    from fubench.engine.replicas import run_replicas

    run_replicas(
        Plan.from_config(config, test_registry, "cpu"),
        datasets.load(config, test_registry),
        0,
        1,
        cache,
        methods=[],
    )
    err = capsys.readouterr().err
    assert "reference from cache" in err and "training it again" not in err


# ------------------------------------------------------------------- the switches
def test_row_groups_keep_sweeps_and_readers_together():
    registry = get_registry()
    config = load_scenario(ROOT / "scenarios" / "backdoor_mnist.yaml", registry)
    groups = worklist.row_groups(Plan.from_config(config, registry, "cpu"))
    assert groups[0] == [
        *(f"tis_reset[gamma={g}]" for g in (0.05, 0.2, 0.5, 0.8)),
        *(f"random_reset[gamma={g}]" for g in (0.05, 0.2, 0.5, 0.8)),
    ]
    # every other method: its sweep's points together, one group per method
    others: dict[str, list[str]] = {}
    for m in config.methods:
        if m.name not in ("tis_reset", "random_reset", "retrain"):  # retrain: a reference
            others.setdefault(m.name, []).append(m.label)
    assert sorted(groups[1:]) == sorted(others.values())
    assert [len(g) for g in groups] == sorted(map(len, groups), reverse=True), "larger first"


@pytest.mark.parametrize("flag", ["--jobs", "--threads"])
def test_bad_counts_are_one_line(flag, backdoor_yaml, capsys):
    assert run_cli("run", str(backdoor_yaml()), flag, "0") == 2
    err = capsys.readouterr().err
    assert "expected a whole number from 1 to 1,024, got 0" in err and "Traceback" not in err
