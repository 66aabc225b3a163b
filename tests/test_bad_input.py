"""The bad-input corpus: malformed scenario files and command lines, as a hostile user
would write them. Each must exit 2 with exactly one line on stderr naming the file and
the key where there is one, no traceback, within seconds; the files that could exhaust
memory run in a subprocess under a memory limit. Valid values that look odd (an integer
where a number is expected) must validate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from fubench.cli import main
from fubench.config.validate import load_scenario
from fubench.config.yaml12 import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from fubench.plugins import get_registry, load_registry, reset_registry
from tests.conftest import TEST_PLUGIN

ROOT = Path(__file__).resolve().parent.parent
#: a hang guard, not a speed measurement: every case takes well under a second
HANG_SECONDS = 30

BASE = {
    "version": 1,
    "name": "probe",
    "description": "a valid file the cases break",
    "dataset": {"name": "mnist", "test_fraction": 0.3},
    "model": {"name": "mnist_cnn"},
    "federation": {"clients": 3, "rounds": 1, "partition": {"name": "iid"}},
    "scenario": {"kind": "backdoor", "client": 0, "target_label": 9},
    "methods": {"retrain": {}, "finetune": {"rounds": 1}},
    "seeds": [0],
    "device": "cpu",
}


_REGISTRY: list[Any] = []


@pytest.fixture(autouse=True)
def shared_registry():
    """One registry (built-ins and the tests' data set) for the whole corpus: loading
    the plugins again for every case would cost more than the cases."""
    if not _REGISTRY:
        _REGISTRY.append(load_registry(extra_plugins=[TEST_PLUGIN]))
    reset_registry(_REGISTRY[0])
    yield


class Hang(BaseException):
    """Raised by the alarm; a BaseException, so no `except Exception` can swallow it."""


@contextmanager
def bounded(seconds: int = HANG_SECONDS):
    def alarm(*_: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_error(capsys, args: list[str], code: int = 2) -> str:
    """Run the CLI in-process; assert the exit code, one line on stderr, no traceback;
    return that line."""
    with bounded():
        rc = main(args)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == code, f"exit {rc}, expected {code}; stderr: {err[-2000:]}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err[:2000]}"
    assert "Traceback" not in err and "Traceback" not in out
    assert len(lines[0]) < 1000, f"an unbounded message: {lines[0][:200]}..."
    return lines[0]


def patched(**changes: Any) -> Callable[[], str]:
    """BASE with dotted keys replaced (``None`` deletes), as YAML."""

    def build() -> str:
        data = yaml.safe_load(yaml.safe_dump(BASE))
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            node = data
            for p in parents:
                node = node[p]
            if value is DELETE:
                del node[last]
            else:
                node[last] = value
        return yaml.safe_dump(data, sort_keys=False, width=10**9)

    return build


DELETE = object()


def raw(text: str | bytes) -> Callable[[], str | bytes]:
    return lambda: text


def base_with(line: str) -> Callable[[], str]:
    """BASE (without description) plus one raw YAML line."""

    def build() -> str:
        data = dict(BASE)
        data.pop("description")
        return yaml.safe_dump(data, sort_keys=False) + line + "\n"

    return build


def alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(["version: 1", *lines, "description: *i"]) + "\n"


def repr_bomb(chars: int, copies: int) -> str:
    """Small once parsed (one string shared by every alias), huge once printed."""
    return base_with(f'description: [&s "{"x" * chars}", ' + ", ".join(["*s"] * copies) + "]")()


# id -> (file content, key the line must name ("" when none), words it must contain)
FILE_CASES: dict[str, tuple[Callable[[], str | bytes], str, str]] = {
    # -- not a YAML scenario at all
    "empty": (raw(""), "", "empty"),
    "only-a-comment": (raw("# nothing here\n"), "", "empty"),
    "unclosed-bracket": (raw("version: 1\nmethods: [retrain\n"), "", "invalid YAML"),
    "tab-indent": (raw("version: 1\nfederation:\n\tclients: 3\n"), "", "invalid YAML"),
    "duplicate-top-key": (raw("version: 1\nversion: 1\n"), "", "duplicate key 'version'"),
    "duplicate-nested-key": (base_with("x: {lr: 1, lr: 2}"), "", "duplicate key 'lr'"),
    "binary-png": (raw(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"), "", "UTF-8"),
    "latin-1": (raw("version: 1\ndescription: caf\xe9\n".encode("latin-1")), "", "not UTF-8"),
    "nul-byte": (raw("version: 1\ndescription: a\x00b\n"), "", "binary"),
    "alias-bomb": (raw(alias_bomb()), "", "alias"),
    "deep-flow-list": (
        raw("version: 1\ndescription: " + "[" * 20000 + "]" * 20000 + "\n"),
        "",
        f"deeper than {MAX_DEPTH}",
    ),
    "deep-flow-mapping": (
        raw("description: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"),
        "",
        f"deeper than {MAX_DEPTH}",
    ),
    "deep-block": (
        raw("description:\n" + "".join(" " * i + "- \n" for i in range(1, 200))),
        "",
        f"deeper than {MAX_DEPTH}",
    ),
    "too-large": (raw("# padding\n" * (MAX_FILE_BYTES // 10 + 10)), "", "bytes"),
    "top-level-list": (raw("- version: 1\n"), "(top level)", "expected a mapping"),
    "top-level-scalar": (raw("hello\n"), "(top level)", "expected a mapping"),
    "python-tag": (
        raw("version: !!python/object/apply:os.system ['echo hi']\n"),
        "",
        "invalid YAML",
    ),
    "5000-digit-int": (base_with("x: " + "9" * 5000), "", "invalid YAML value"),
    "merge-twice": (base_with("x:\n  <<: {a: 1}\n  <<: {b: 2}"), "", "duplicate key '<<'"),
    "list-as-key": (raw("version: 1\n[a, b]: 1\n"), "", "a key must be a name"),
    "merge-a-number": (base_with("x:\n  <<: 3"), "", "mapping or list of mappings for merging"),
    "int-key": (raw("1: x\n"), "(top level)", "keys must be strings"),
    "repr-bomb-small": (lambda: repr_bomb(100_000, 2_000), "description", "expected a string"),
    "newline-in-key": (base_with('"foo\\nbar": 1'), "'foo\\nbar'", "unknown key"),
    "huge-unknown-key": (base_with("? " + "k" * 20_000 + "\n: 1"), "'kkk", "unknown key"),
    "huge-unknown-method": (patched(methods={"m" * 20_000: {}}), "methods", "unknown method"),
    # a value listed twice would make two rows of one label, or one column twice
    "sweep-repeated": (
        patched(methods={"retrain": {}, "finetune": {"rounds": [1, 1]}}),
        "methods.finetune.rounds[1]",
        "listed twice",
    ),
    "sweep-repeated-as-float": (
        patched(methods={"retrain": {}, "finetune": {"lr": [1, 1.0]}}),
        "methods.finetune.lr[1]",
        "listed twice",
    ),
    "metrics-twice": (
        patched(metrics=["test_acc", "asr", "test_acc"]),
        "metrics[2]",
        "listed twice",
    ),
    # a method's own checks, per sweep point: impossible or pointless settings
    "ferrari-sigma-range": (
        patched(methods={"retrain": {}, "ferrari": {"sigma_min": 2.0, "sigma_max": 0.5}}),
        "methods.ferrari.sigma_min",
        "at most sigma_max (0.5)",
    ),
    "fedrecovery-epsilon-unused": (
        patched(methods={"retrain": {}, "fedrecovery": {"epsilon": 5}}),
        "methods.fedrecovery.epsilon",
        "only used with noise: dp_calibrated",
    ),
    "tis-mc-samples-unused": (
        patched(methods={"retrain": {}, "tis_reset": {"mc_samples": 3}}),
        "methods.tis_reset.mc_samples",
        "only used with curvature: ggn_mc or hybrid",
    ),
    "ferrari-sigma-grid-point": (
        patched(
            methods={"retrain": {}, "ferrari": {"sigma_min": [0.05, 0.5], "sigma_max": [0.3, 1.0]}}
        ),
        "methods.ferrari[sigma_min=0.5,sigma_max=0.3].sigma_min",
        "at most sigma_max",
    ),
    "sweep-same-label": (
        patched(methods={"retrain": {}, "tis_reset": {"gamma": [0.1, 0.1000001]}}),
        "methods.tis_reset.gamma[1]",
        "value '0.1' is listed twice",
    ),
    "tis-retrain-lr-unused": (
        patched(methods={"retrain": {}, "tis_reset": {"minimal_retrain_lr": 0.1}}),
        "methods.tis_reset.minimal_retrain_lr",
        "minimal_retrain_rounds > 0",
    ),
    "distillation-lr-unused": (
        patched(methods={"retrain": {}, "distillation": {"epochs": 0, "lr": 0.1}}),
        "methods.distillation.lr",
        "only used with epochs > 0",
    ),
    "fedcdp-epochs-unused": (
        patched(methods={"retrain": {}, "fedcdp": {"finetune_rounds": 0, "local_epochs": 3}}),
        "methods.fedcdp.local_epochs",
        "only used with finetune_rounds > 0",
    ),
    "mlp-hidden-fraction": (
        patched(model={"name": "mlp", "hidden": [64, 6.5]}),
        "model.hidden[1]",
        "whole number >= 1, got 6.5",
    ),
    "mlp-hidden-negative": (
        patched(model={"name": "mlp", "hidden": [-5]}),
        "model.hidden[0]",
        "whole number >= 1",
    ),
    "mlp-hidden-bool": (
        patched(model={"name": "mlp", "hidden": [True]}),
        "model.hidden[0]",
        "got True",
    ),
    # a claim that could never be tested
    "claim-row-against-itself": (
        patched(
            claims=[
                {"id": "a", "source": "s", "metric": "asr", "row": "finetune", "below": "finetune"}
            ]
        ),
        "claims[0].below",
        "with itself",
    ),
    "claim-metric-not-shown": (
        patched(
            metrics=["test_acc", "asr"],
            claims=[
                {"id": "a", "source": "s", "metric": "nta", "row": "finetune", "below": "retrain"}
            ],
        ),
        "claims[0].metric",
        "not among",
    ),
    # a partitioner checks its own parameters at validate time, as kinds do
    "exclusive-classes-not-numbers": (
        patched(federation__partition={"name": "preferential", "exclusive_classes": [[1], 2, 3]}),
        "federation.partition.exclusive_classes",
        "3 distinct class numbers (0 to 9)",
    ),
    # -- top level
    "version-missing": (patched(version=DELETE), "version", "missing required key"),
    "version-2": (patched(version=2), "version", "expected one of"),
    "version-string": (patched(version="1"), "version", "expected one of"),
    "name-with-space": (patched(name="a b"), "name", "letters, digits"),
    "name-too-long": (patched(name="n" * 300), "name", "at most 100"),
    "description-list": (patched(description=[1, 2]), "description", "expected a string"),
    "unknown-top-key": (patched(seed=1), "seed", "did you mean 'seeds'"),
    # -- dataset and model
    "dataset-missing": (patched(dataset=DELETE), "dataset", "missing required key"),
    "dataset-name-list": (
        patched(dataset__name=["mnist"]),
        "dataset.name",
        "expected a name (string), got a list",
    ),
    "dataset-typo": (patched(dataset__name="mnits"), "dataset.name", "did you mean 'mnist'"),
    "test-fraction-high": (patched(dataset__test_fraction=0.95), "dataset.test_fraction", "<= 0.9"),
    "split-seed-negative": (patched(dataset__split_seed=-1), "dataset.split_seed", ">= 0"),
    "model-list": (patched(model=["mnist_cnn"]), "model", "expected a mapping, got a list"),
    "model-name-int": (patched(model__name=5), "model.name", "expected a name"),
    # -- federation
    "federation-scalar": (patched(federation=3), "federation", "expected a mapping"),
    "clients-missing": (
        patched(federation__clients=DELETE),
        "federation.clients",
        "missing required key",
    ),
    "clients-zero": (patched(federation__clients=0), "federation.clients", ">= 1"),
    "clients-10^12": (patched(federation__clients=10**12), "federation.clients", "at most 10,000"),
    "clients-float": (
        patched(federation__clients=1.5),
        "federation.clients",
        "expected an integer",
    ),
    "clients-bool": (patched(federation__clients=True), "federation.clients", "boolean"),
    "rounds-string": (
        patched(federation__rounds="many"),
        "federation.rounds",
        "expected an integer",
    ),
    "lr-zero": (patched(federation__lr=0), "federation.lr", "> 0"),
    "lr-10^400": (patched(federation__lr=10**400), "federation.lr", "2^63"),
    "lr-inf": (patched(federation__lr=float("inf")), "federation.lr", "finite"),
    "lr-nan": (patched(federation__lr=float("nan")), "federation.lr", "finite"),
    "momentum-high": (patched(federation__momentum=1.5), "federation.momentum", "<= 0.999"),
    "client-fraction-zero": (
        patched(federation__client_fraction=0),
        "federation.client_fraction",
        "> 0",
    ),
    "record-history-maybe": (
        patched(federation__record_history="maybe"),
        "federation.record_history",
        "true, false or auto",
    ),
    "history-dtype": (
        patched(federation__history_dtype="float64"),
        "federation.history_dtype",
        "float16",
    ),
    "alpha-negative": (
        patched(federation__partition={"name": "dirichlet", "alpha": -1}),
        "federation.partition.alpha",
        "> 0",
    ),
    "partition-unknown-key": (
        patched(federation__partition={"name": "iid", "beta": 1}),
        "federation.partition.beta",
        "unknown key",
    ),
    "partition-list": (
        patched(federation__partition=["iid"]),
        "federation.partition",
        "expected a mapping",
    ),
    # -- scenario
    "kind-missing": (patched(scenario={"client": 0}), "scenario.kind", "missing required"),
    "kind-typo": (patched(scenario__kind="backdor"), "scenario.kind", "did you mean"),
    "client-out-of-range": (patched(scenario__client=7), "scenario.client", "0..2"),
    "label-out-of-range": (patched(scenario__target_label=10), "scenario.target_label", "0..9"),
    "poison-fraction-high": (
        patched(scenario__poison_fraction=1.5),
        "scenario.poison_fraction",
        "<= 1",
    ),
    "pattern-corner": (
        patched(scenario__trigger_corner="top_left"),
        "scenario.trigger_corner",
        "bottom-right",
    ),
    "trigger-choice": (
        patched(scenario__trigger="sqare"),
        "scenario.trigger",
        "did you mean 'square'",
    ),
    # -- methods, metrics, seeds, device
    "methods-empty-list": (patched(methods=[]), "methods", "at least one method"),
    "methods-empty-mapping": (patched(methods={}), "methods", "at least one method"),
    "methods-twice": (patched(methods=["retrain", "retrain"]), "methods", "listed twice"),
    "methods-nested-list": (
        patched(methods=[["retrain"]]),
        "methods[0]",
        "expected a method name, got a list",
    ),
    "method-typo": (patched(methods={"ferari": {}}), "methods.ferari", "did you mean 'ferrari'"),
    "method-param-range": (
        patched(methods={"finetune": {"rounds": 0}}),
        "methods.finetune.rounds",
        ">= 1",
    ),
    "sweep-empty": (
        patched(methods={"finetune": {"rounds": []}}),
        "methods.finetune.rounds",
        "at least one value",
    ),
    "sweep-too-long": (
        patched(methods={"finetune": {"rounds": list(range(1, 1100))}}),
        "methods.finetune.rounds",
        "at most 1,000",
    ),
    "sweep-product": (
        patched(
            methods={"finetune": {"rounds": list(range(1, 41)), "local_epochs": list(range(1, 41))}}
        ),
        "methods.finetune",
        "1,600 rows",
    ),
    "method-param-typo": (
        patched(methods={"finetune": {"round": 1}}),
        "methods.finetune.round",
        "did you mean 'rounds'",
    ),
    "method-params-list": (
        patched(methods={"finetune": [1]}),
        "methods.finetune",
        "expected a mapping",
    ),
    "metrics-empty": (patched(metrics=[]), "metrics", "non-empty list"),
    "metrics-string": (patched(metrics="test_acc"), "metrics", "non-empty list"),
    "metric-unknown": (patched(metrics=["acc"]), "metrics[0]", "unknown metric"),
    "metric-list-as-name": (
        patched(metrics=[["test_acc"]]),
        "metrics[0]",
        "expected a name (string), got a list",
    ),
    "seeds-empty": (patched(seeds=[]), "seeds", "non-empty list"),
    "seeds-twice": (patched(seeds=[0, 0]), "seeds", "seed 0 is listed twice"),
    "seed-negative": (patched(seeds=[-1]), "seeds[0]", ">= 0"),
    "seed-float": (patched(seeds=[1.5]), "seeds[0]", "integer"),
    "seed-10^30": (patched(seeds=[10**30]), "seeds[0]", "2^63"),
    "seeds-string": (patched(seeds="0,1"), "seeds", "list of integers"),
    "device-cuda-x": (patched(device="cuda:x"), "device", "cuda:N"),
    "device-gpu": (patched(device="gpu"), "device", "cuda:N"),
    "device-int": (patched(device=5), "device", "cuda:N"),
}


def write(tmp_path: Path, content: str | bytes, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_the_corpus_is_large_enough():
    assert len(FILE_CASES) + len(CLI_CASES) + len(PREFLIGHT_CASES) >= 60


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_malformed_file(case, tmp_path, capsys):
    content, key, words = FILE_CASES[case]
    path = write(tmp_path, content())
    line = one_error(capsys, ["validate", str(path)])
    assert line.startswith(f"{path}: "), line
    if key:
        assert f": {key}" in line, f"the key {key!r} is not named: {line}"
    assert words in line, line
    # `run` refuses the file the same way, before anything else
    assert (
        one_error(capsys, ["run", str(path), "--out", str(tmp_path / "out")])
        == f"fubench: error: {line}"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"federation__lr": 1},
        {"federation__momentum": 0},
        {"federation__weight_decay": 0},
        {"federation__client_fraction": 1},
        {"federation__partition": {"name": "dirichlet", "alpha": 1}},
        {"scenario__poison_fraction": 1},
        {"methods": {"retrain": {}, "ferrari": {"lr": 1}}},
        {"methods": {"ferrari": {"lr": [1, 2]}}},
        {"device": "cuda:0"},
        {"device": "mps"},
    ],
    ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()),
)
def test_integers_are_valid_numbers(changes, tmp_path, capsys):
    path = write(tmp_path, patched(**changes)())
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    config = load_scenario(path, get_registry())
    floats = [
        config.federation.lr,
        config.federation.momentum,
        config.federation.weight_decay,
        config.federation.client_fraction,
        config.federation.partition.params.get("alpha", 0.5),
        config.scenario.params["poison_fraction"],
        *[m.params["lr"] for m in config.methods if m.name == "ferrari"],
    ]
    assert all(type(v) is float for v in floats), floats


def test_numbers_with_an_exponent_are_numbers(tmp_path, capsys):
    """1e-3 is a string to YAML 1.1 (PyYAML); scenario files read it as YAML 1.2 does."""
    text = patched()().replace("  clients: 3\n", "  clients: 3\n  lr: 1e-3\n  momentum: 9E-1\n")
    text = text.replace(
        "  finetune:\n    rounds: 1\n", "  finetune:\n    rounds: 1\n  ferrari:\n    lr: 5.0e-4\n"
    )
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    config = load_scenario(path, get_registry())
    assert config.federation.lr == 0.001 and config.federation.momentum == 0.9
    assert [m.params["lr"] for m in config.methods if m.name == "ferrari"] == [0.0005]
    huge = write(tmp_path, text.replace("lr: 1e-3", "lr: 1e400"), "huge.yaml")
    line = one_error(capsys, ["validate", str(huge)])
    assert line.startswith(f"{huge}: federation.lr: "), line


#: (text in the valid file, YAML 1.1's reading of the replacement, key, words): what
#: PyYAML would have silently turned into another value is refused by type
YAML_1_1_SURPRISES = {
    "base-60": ("  clients: 3\n", "  clients: 1:05\n", "federation.clients", "'1:05'"),
    "underscore": ("  clients: 3\n", "  clients: 1_0\n", "federation.clients", "'1_0'"),
    "yes-as-bool": (
        "  rounds: 1\nmethods:",
        "  rounds: 1\n  record_history: yes\nmethods:",
        "federation.record_history",
        "'yes'",
    ),
    "off-as-bool": (
        "  target_label: 9\n",
        "  target_label: 9\n  poison_fraction: off\n",
        "scenario.poison_fraction",
        "'off'",
    ),
}


@pytest.mark.parametrize("case", list(YAML_1_1_SURPRISES))
def test_yaml_1_1_readings_are_refused_not_taken(case, tmp_path, capsys):
    old, new, key, words = YAML_1_1_SURPRISES[case]
    text = patched()()
    assert old in text
    path = write(tmp_path, text.replace(old, new))
    line = one_error(capsys, ["validate", str(path)])
    assert line.startswith(f"{path}: {key}: ") and words in line, line


def test_numbers_read_as_yaml_1_2_reads_them(tmp_path, capsys):
    """010 is ten (not octal eight); 0o10 is eight; .5 is a number; a date is text."""
    text = patched()().replace("seeds:\n- 0\n", "seeds: [010, 0o10]\n")
    text = text.replace("  target_label: 9\n", "  target_label: 9\n  poison_fraction: .5\n")
    text = text.replace("description: a valid file the cases break", "description: 2020-13-45")
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    config = load_scenario(path, get_registry())
    assert config.seeds == [10, 8] and config.scenario.params["poison_fraction"] == 0.5
    assert config.description == "2020-13-45", "no dates in YAML 1.2: a string"


def test_a_setting_that_counts_at_some_sweep_point_is_accepted(tmp_path, capsys):
    """mc_samples counts where the curvature sweep reaches ggn_mc; epsilon where the
    noise sweep reaches dp_calibrated."""
    text = patched(
        methods={
            "retrain": {},
            "tis_reset": {
                "curvature": ["ggn_exact", "ggn_mc"],
                "mc_samples": 4,
                "minimal_retrain_rounds": [0, 2],
                "minimal_retrain_lr": 0.01,
            },
            "fedrecovery": {"noise": ["sigma", "dp_calibrated"], "epsilon": 2.0},
        }
    )()
    assert main(["validate", str(write(tmp_path, text))]) == 0, capsys.readouterr().err


def test_merge_keys_share_settings_and_explicit_keys_win(tmp_path, capsys):
    """``<<: *anchor`` is standard YAML; a key written out overrides the merged one."""
    text = patched()()
    assert "federation:\n  clients: 3\n" in text
    text = text.replace(
        "federation:\n  clients: 3\n",
        "federation:\n  <<: &shared {clients: 4, lr: 0.2}\n  clients: 3\n",
    )
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    config = load_scenario(path, get_registry())
    assert (config.federation.clients, config.federation.lr) == (3, 0.2)
    typo = write(tmp_path, text.replace("lr: 0.2}", "lrr: 0.2}"), "typo.yaml")
    line = one_error(capsys, ["validate", str(typo)])
    assert "federation.lrr: unknown key; did you mean 'lr'" in line


def test_a_refusal_after_loading_real_data_is_still_one_line(tmp_path, monkeypatch, capsys):
    """MNIST offline: the loader notes its fallback to the 5k subset; the run is then
    refused (more clients than samples), and the refusal is the only line; so are plot
    attention's refusals after the data loaded."""
    import os

    import torchvision

    def download(self):
        os.makedirs(self.raw_folder, exist_ok=True)
        raise RuntimeError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", download)
    monkeypatch.setenv("FUBENCH_DATA", str(tmp_path / "data"))
    path = write(tmp_path, patched(federation__clients=4000)())  # the 5k subset: 3,500 train
    line = one_error(capsys, ["run", str(path), "--out", str(tmp_path / "out")])
    assert f"{path}: federation.clients" in line, line
    # the data load, then plot attention refuses its --split or -o: one line as well
    import fubench.data

    valid = write(tmp_path, patched()(), "valid.yaml")
    monkeypatch.setattr(fubench.data, "_LOADED", {})  # loaded anew: its note is said again
    line = one_error(
        capsys, ["plot", "attention", str(valid), "-o", str(tmp_path / "a.png"), "--split", "bogus"]
    )
    assert "--split: scenario 'probe' has no evaluation set 'bogus'" in line, line
    (tmp_path / "FILE").write_text("")
    monkeypatch.setattr(fubench.data, "_LOADED", {})
    line = one_error(
        capsys, ["plot", "attention", str(valid), "-o", str(tmp_path / "FILE" / "a.png")]
    )
    assert "a file, not a folder" in line, line


def test_validate_names_every_bad_file_on_its_own_line(tmp_path, capsys):
    good = write(tmp_path, patched()(), "good.yaml")
    binary = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "binary.yaml")
    latin = write(tmp_path, "version: 1\ndescription: caf\xe9\n".encode("latin-1"), "l.yaml")
    typo = write(tmp_path, patched(seed=1)(), "typo.yaml")
    with bounded():
        rc = main(["validate", str(binary), str(good), str(latin), str(typo)])
    out, err = capsys.readouterr()
    assert rc == 2
    lines = err.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(binary), str(latin), str(typo)]
    assert out.startswith(f"{good}: ok")
    assert "Traceback" not in err


def test_a_folder_or_a_device_is_not_a_scenario_file(tmp_path, capsys):
    assert "a folder" in one_error(capsys, ["validate", str(tmp_path)])
    assert "cannot read" in one_error(capsys, ["validate", str(tmp_path / "missing.yaml")])
    if Path("/dev/zero").exists():
        assert "a device" in one_error(capsys, ["validate", "/dev/zero"])


# ------------------------------------------------------------------ memory bounds
MEMORY_PROBE = textwrap.dedent("""\
    import resource, sys
    from fubench.cli import main
    from fubench.plugins import get_registry
    get_registry()
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            used = int(line.split()[1]) * 1024
    limit = used + 2**30   # 1 GB more than fubench itself takes once loaded
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.exit(main(["validate", *sys.argv[1:]]))
    """)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_hostile_files_stay_under_a_gigabyte(tmp_path):
    """The alias bomb, 20,000-deep nesting and a value that is small parsed but
    gigabytes printed: each one line, under 1 GB more than fubench itself uses."""
    files = [
        write(tmp_path, alias_bomb(), "bomb.yaml"),
        write(
            tmp_path, "version: 1\ndescription: " + "[" * 20000 + "]" * 20000 + "\n", "deep.yaml"
        ),
        write(tmp_path, repr_bomb(500_000, 90_000), "repr.yaml"),
        write(tmp_path, patched(federation__lr=int("1" * 4000))(), "bigint.yaml"),
    ]
    assert (tmp_path / "repr.yaml").stat().st_size < MAX_FILE_BYTES
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert [line.split(": ")[0] for line in lines] == list(map(str, files)), done.stderr
    assert all(len(line) < 300 for line in lines), lines
    assert f"{MAX_NODES:,}" in lines[0] and f"{MAX_DEPTH}" in lines[1]


# --------------------------------------------------------------------- command lines
#: args after the scenario file (written from conftest's tiny backdoor scenario)
CLI_CASES: dict[str, tuple[list[str], str]] = {
    "seeds-twice": (["--seeds", "0,0"], "seed 0 is listed twice"),
    "seeds-negative": (["--seeds", "-1"], "--seeds: expected seeds >= 0, got '-1'"),
    "seeds-words": (["--seeds", "one"], "expected a whole number, got 'one'"),
    "seeds-empty-entry": (["--seeds", "0,,1"], "none empty"),
    "seeds-trailing-comma": (["--seeds", "0,"], "none empty"),
    "seeds-underscore": (["--seeds", "1_0"], "whole number, got '1_0'"),
    "seeds-arabic-digit": (["--seeds", "\u0663"], "whole number"),
    "jobs-underscore": (["--jobs", "1_0"], "--jobs"),
    "jobs-zero": (["--jobs", "0"], "from 1 to 1,024"),
    "threads-huge": (["--threads", "9" * 20], "--threads"),
    "address-without-ray": (["--address", "foo:1"], "only used with --executor ray"),
    "out-empty": (["--out", ""], "--out: expected a path"),
    "table-empty": (["--table", ""], "--table: expected a path"),
    "seeds-empty": (["--seeds", ""], "--seeds"),
    "seeds-huge": (["--seeds", "9" * 30], "2^63"),
    "methods-empty": (["--methods", ""], "--methods"),
    "methods-commas": (["--methods", ",,"], "--methods"),
    "methods-twice": (["--methods", "finetune,finetune"], "listed twice"),
    "methods-unknown": (["--methods", "finetun"], "did you mean 'finetune'"),
    "device-bogus": (["--device", "bogus"], "--device"),
    "device-cuda-x": (["--device", "cuda:x"], "cuda:N"),
    "device-cuda-99": (["--device", "cuda:99"], "cuda:99"),
    "unknown-flag": (["--sedes", "0"], "unrecognized arguments"),
    "flag-without-value": (["--out"], "expected one argument"),
}


@pytest.fixture
def tiny(backdoor_yaml):
    return backdoor_yaml()


def assert_nothing_ran(tmp_path: Path) -> None:
    cache = Path(os.environ["FUBENCH_CACHE"])
    assert not list(cache.glob("*.pt")), "a model was trained before the check"
    assert not list(tmp_path.rglob("seed_*.json")), "a result was written before the check"


def skip_where_cuda_99_exists(case: str) -> None:
    """The cuda-99 cases expect a refusal: a machine with 100 GPUs would accept it."""
    import torch

    if case.endswith("cuda-99") and torch.cuda.device_count() > 99:
        pytest.skip("this machine has 100 GPUs, so cuda:99 is no mistake here")


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_command_line(case, tiny, tmp_path, capsys):
    args, words = CLI_CASES[case]
    skip_where_cuda_99_exists(case)
    line = one_error(capsys, ["run", str(tiny), "--out", str(tmp_path / "out"), *args])
    assert words in line, line
    assert_nothing_ran(tmp_path)


#: other commands, refused before any training: (command, args after the file, words)
OTHER_CASES: dict[str, tuple[str, list[str], str]] = {
    "quality-device-bogus": ("quality", ["--device", "bogus"], "--device: expected"),
    "quality-replicas-1": (
        "quality",
        ["--replicas", "1"],
        "--replicas: expected a whole number from 2",
    ),
    "quality-replicas-huge": ("quality", ["--replicas", "9" * 23], "--replicas"),
    "quality-delta-nan": ("quality", ["--delta", "nan"], "--delta: expected a number"),
    "quality-delta-negative": ("quality", ["--delta", "-1"], "--delta"),
    "quality-delta-1": ("quality", ["--delta", "1"], "--delta"),
    "quality-out-a-file": ("quality", ["--out", "FILE"], "a file, not a folder"),
    "quality-device-cuda-99": ("quality", ["--device", "cuda:99"], "--device"),
    "attention-device-bogus": ("plot attention", ["--device", "bogus"], "--device: expected"),
    "attention-seed-negative": ("plot attention", ["--seed", "-1"], "--seed"),
    "attention-images-0": ("plot attention", ["--images", "0"], "--images"),
    "attention-split-bogus": (
        "plot attention",
        ["--split", "bogus"],
        "--split: scenario 'tiny_backdoor' has no evaluation set",
    ),
}


@pytest.mark.parametrize("case", list(OTHER_CASES))
def test_other_commands_refuse_before_training(case, tiny, tmp_path, capsys):
    command, args, words = OTHER_CASES[case]
    skip_where_cuda_99_exists(case)
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    out = (
        ["--out", str(tmp_path / "out")]
        if command == "quality" and "--out" not in args
        else ["-o", str(tmp_path / "a.png")]
        if command != "quality"
        else []
    )
    line = one_error(capsys, [*command.split(), str(tiny), *out, *args])
    assert words in line, line
    assert_nothing_ran(tmp_path)


def test_leaderboard_flags_and_a_missing_board_are_one_line(tmp_path, capsys):
    from tests.resultfiles import write
    from tests.test_leaderboard import two_scenarios

    for result in two_scenarios():
        write(
            tmp_path / "results" / result["scenario"]["name"] / f"seed_{result['seed']}.json",
            result,
        )
    results = str(tmp_path / "results")
    base = ["--base", str(tmp_path)]  # the board's own folder: no note on links
    line = one_error(capsys, ["leaderboard", results, "-o", str(tmp_path / "b.md"), "--json"])
    assert "--json is only used with --list-offline" in line
    missing = tmp_path / "missing.md"
    assert main(["leaderboard", results, "-o", str(missing), "--check", *base]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{missing} does not exist; write it" in err[0], err


@pytest.mark.parametrize(
    "args",
    [[], ["frobnicate"], ["list", "bogus"], ["plot", "tradeoff", "x.json"], ["run"]],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_usage_errors_are_one_line(args, capsys):
    if not args:
        with bounded():
            assert main([]) == 2  # prints the help, on stdout
        return
    one_error(capsys, args)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder nobody may write: read-only bits, or (as root, whom bits do not stop)
    a system folder that refuses new entries."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in (Path("/sys"), Path("/proc")):
        try:
            (candidate / "fubench-probe").mkdir()
        except OSError:
            return candidate
        (candidate / "fubench-probe").rmdir()
    pytest.skip("no folder is read-only to root here")


#: (scenario YAML changes, args, environment, key, words); paths are made in tmp_path:
#: FILE an existing file, RO a folder nobody may write
PREFLIGHT_CASES: dict[str, tuple[dict[str, str], list[str], dict[str, str], str, str]] = {
    "out-is-a-file": ({}, ["--out", "FILE"], {}, "--out", "a file, not a folder"),
    "out-under-a-file": ({}, ["--out", "FILE/x"], {}, "--out", "a file, not a folder"),
    "out-read-only": ({}, ["--out", "RO/x"], {}, "--out", "not writable"),
    "table-is-a-folder": ({}, ["--table", "DIR"], {}, "--table", "is a folder"),
    "table-under-a-file": ({}, ["--table", "FILE/t.md"], {}, "--table", "a file"),
    "table-read-only": ({}, ["--table", "RO/t.md"], {}, "--table", "not writable"),
    "cache-is-a-file": ({}, [], {"FUBENCH_CACHE": "FILE"}, "FUBENCH_CACHE", "a file"),
    "cache-read-only": ({}, [], {"FUBENCH_CACHE": "RO/c"}, "FUBENCH_CACHE", "not writable"),
    "data-is-a-file": ({}, [], {"FUBENCH_DATA": "FILE"}, "FUBENCH_DATA", "a file"),
    "data-read-only": ({}, [], {"FUBENCH_DATA": "RO/d"}, "FUBENCH_DATA", "not writable"),
    "more-clients-than-samples": (
        {"clients: 3": "clients: 300"},
        [],
        {},
        "federation.clients",
        "300 clients but",
    ),
    "min-size-too-large": (
        {"{name: iid}": "{name: dirichlet, min_size: 200}"},
        [],
        {},
        "federation.partition.min_size",
        "lower min_size",
    ),
    "exclusive-classes-nested": (
        {"{name: iid}": "{name: preferential, exclusive_classes: [[1], 2, 3]}"},
        [],
        {},
        "federation.partition.exclusive_classes",
        "[[1], 2, 3]",
    ),
    "exclusive-classes-twice": (
        {"{name: iid}": "{name: preferential, exclusive_classes: [1, 1, 3]}"},
        [],
        {},
        "federation.partition.exclusive_classes",
        "distinct",
    ),
    "trigger-margin-too-large": (
        {"poison_fraction: 0.5": "poison_fraction: 0.5, trigger_margin: 20"},
        [],
        {},
        "scenario.trigger_margin",
        "does not fit 16x16",
    ),
    "trigger-size-too-large": (
        {"poison_fraction: 0.5": "poison_fraction: 0.5, trigger: square, trigger_size: 30"},
        [],
        {},
        "scenario.trigger_size",
        "does not fit 16x16",
    ),
    "model-list-as-width": (
        {"model: {name: mnist_cnn}": "model: {name: mlp, hidden: [[1], 2]}"},
        [],
        {},
        "model.hidden[0]",
        "a whole number >= 1, got [1]",
    ),
    "device-mps-in-file": ({"device: cpu": "device: mps"}, [], {}, "device", "mps"),
}


@pytest.mark.parametrize("case", list(PREFLIGHT_CASES))
def test_checked_before_training(case, tiny, tmp_path, capsys, monkeypatch):
    changes, args, env, key, words = PREFLIGHT_CASES[case]
    if case == "device-mps-in-file":
        import torch

        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            pytest.skip("this machine has an Apple GPU")
    text = tiny.read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    tiny.write_text(text)
    (tmp_path / "FILE").write_text("not a folder")
    (tmp_path / "DIR").mkdir()
    places = {"FILE": str(tmp_path / "FILE"), "DIR": str(tmp_path / "DIR")}
    if any("RO" in a for a in [*args, *env.values()]):
        places["RO"] = str(unwritable_folder(tmp_path))

    def place(text: str) -> str:
        head, _, rest = text.partition("/")
        return places.get(head, head) + ("/" + rest if rest else "")

    for name, value in env.items():
        monkeypatch.setenv(name, place(value))
    args = [place(a) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    line = one_error(capsys, ["run", str(tiny), *args])
    assert key in line and words in line, line
    if key[0].islower():  # a key of the file: the file is named too
        assert str(tiny) in line, line
    assert_nothing_ran(tmp_path)


# ------------------------------------------------------------------- stored results
@pytest.mark.parametrize(
    "content",
    [
        '{"schema": 1, "scenario": {"na',
        "[1, 2, 3]",
        '{"schema": 1}',
        "\xff\xfe garbage",
        '{"schema": 1, "seed": 0, "scenario": {"name": "s"}, "methods": {"m": 3}}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["truncated", "a-list", "no-methods", "not-utf8", "row-not-a-row", "deep"],
)
def test_table_names_a_corrupt_result_file(content, tmp_path, capsys):
    path = tmp_path / "corrupt.json"
    path.write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    line = one_error(capsys, ["table", str(path)])
    assert str(path) in line, line


def test_table_of_nothing_is_one_line(tmp_path, capsys):
    assert "no result files" in one_error(capsys, ["table", str(tmp_path)])


def test_gpu_numbers_are_checked_against_the_machine(monkeypatch):
    """The device check on a machine with one GPU (simulated: this may have none)."""
    import torch

    from fubench.preflight import device_unavailable

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device_unavailable("cuda") is None and device_unavailable("cuda:0") is None
    assert "has 1 CUDA device (cuda:0)" in device_unavailable("cuda:1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert "cuda:0 to cuda:3" in device_unavailable("cuda:7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA is not available" in device_unavailable("cuda:0")
    assert device_unavailable("cpu") is None and device_unavailable("auto") is None


def test_a_crashing_check_of_a_scenario_kind_is_one_line(tmp_path, capsys):
    import types

    import fubench

    class Fragile(fubench.ScenarioKind):
        name = "fragile"

        @classmethod
        def validate_config(cls, params, context):
            raise KeyError("oops")

    plugin = types.ModuleType("fragile_plugin")
    plugin.fubench_scenario_kinds = fubench.hookimpl(lambda: [Fragile])
    reset_registry(load_registry(extra_plugins=[TEST_PLUGIN, plugin]))
    path = write(tmp_path, patched(scenario={"kind": "fragile"})())
    line = one_error(capsys, ["validate", str(path)])
    assert ": scenario: fragile: its check failed: KeyError: 'oops' (test_bad_input.py:" in line


def test_a_sensitive_column_the_data_lack_is_refused_before_training(tmp_path, capsys):
    """Fair's columns are known once the data load: validate (the data being here) and
    the run before training refuse a column the data lack, naming scenario.columns."""
    text = (ROOT / "scenarios" / "sensitive_fair.yaml").read_text()
    assert "  columns: [religious]\n" in text
    twice = write(tmp_path, text.replace("[religious]", "[religious, religious]"), "twice.yaml")
    line = one_error(capsys, ["validate", str(twice)])
    assert line.startswith(f"{twice}: scenario.columns: 'religious' is listed twice"), line
    typo = write(tmp_path, text.replace("[religious]", "[religiosity]"), "typo.yaml")
    line = one_error(capsys, ["validate", str(typo)])  # the data are here: it checks them
    assert f"{typo}: scenario.columns: no feature 'religiosity'" in line, line
    line = one_error(capsys, ["run", str(typo), "--out", str(tmp_path / "out"), "--seeds", "0"])
    assert f"{typo}: scenario.columns: no feature 'religiosity'" in line, line
    assert_nothing_ran(tmp_path)


# ---------------------------------------------- stored results, read strictly (22.4)
def stored_result(seed: int = 0, scenario: str = "s", **changes: Any) -> dict[str, Any]:
    """A complete, sealed result of two rows, with ``changes`` applied to it."""
    from fubench.results import sealed

    rows = {
        label: {"method": label, "params": {}, "metrics": {"test_acc": 0.9}, "status": "ok"}
        for label in ("original", "retrain")
    }
    result = {
        "schema": 1,
        "scenario": {"name": scenario, "kind": "backdoor", "version": 1},
        "config_hash": "abc",
        "seed": seed,
        "dataset": {"name": "d", "source": "a test"},
        "reference": "retrain",
        "methods": rows,
        "provenance": {"fubench_version": "0"},
    }
    sealed(result)
    for key, value in changes.items():
        if value is None:
            result.pop(key)
        else:
            result[key] = value
    return result


def with_metric(value_json: str) -> str:
    """A sealed result whose retrain test_acc is replaced by raw JSON ``value_json``."""
    text = json.dumps(stored_result())
    return text.replace('"test_acc": 0.9}, "status": "ok", "digest"', "X", 1).replace(
        "X", f'"test_acc": {value_json}}}, "status": "ok", "digest"', 1
    )


STORED_CASES = {
    "nan": (with_metric("NaN"), "NaN"),
    "infinity": (with_metric("Infinity"), "Infinity"),
    "overflow": (with_metric("1e999"), "too large"),
    "a-list": (with_metric("[1, 2]"), "a metric is a number or null"),
    "a-string": (with_metric('"high"'), "a metric is a number or null"),
    "a-boolean": (with_metric("true"), "a metric is a number or null"),
    "no-dataset": (json.dumps(stored_result(dataset=None)), "'dataset' is missing"),
    "no-provenance": (json.dumps(stored_result(provenance=None)), "'provenance' is missing"),
    "seed-in-the-name": (json.dumps(stored_result(seed=2)), "its name says seed 0"),
}


@pytest.mark.parametrize("case", list(STORED_CASES))
def test_a_result_file_is_read_strictly(case, tmp_path, capsys):
    text, words = STORED_CASES[case]
    path = tmp_path / "s" / "seed_0.json"
    path.parent.mkdir()
    path.write_text(text)
    line = one_error(capsys, ["table", str(tmp_path)])
    assert str(path) in line and words in line, line


def test_an_edited_row_is_refused(tmp_path, capsys):
    result = stored_result()
    result["methods"]["retrain"]["metrics"]["test_acc"] = 0.99  # by hand: digest stale
    path = tmp_path / "s" / "seed_0.json"
    path.parent.mkdir()
    path.write_text(json.dumps(result))
    line = one_error(capsys, ["table", str(tmp_path)])
    assert str(path) in line and "row 'retrain'" in line and "edited" in line, line


def test_the_same_scenario_and_seed_twice_is_refused(tmp_path, capsys):
    for folder in ("a", "b"):
        path = tmp_path / folder / "s" / "seed_0.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(stored_result()))
    line = one_error(capsys, ["table", str(tmp_path / "a"), str(tmp_path / "b")])
    assert "both hold scenario 's' seed 0" in line, line


def test_a_gold_standard_that_is_not_the_reference_method_is_refused(tmp_path, capsys):
    from fubench.results import sealed

    result = stored_result()
    result["methods"]["finetune"] = dict(result["methods"]["retrain"], method="finetune")
    result["reference"] = "finetune"
    path = tmp_path / "s" / "seed_0.json"
    path.parent.mkdir()
    path.write_text(json.dumps(sealed(result)))
    line = one_error(capsys, ["table", str(tmp_path)])
    assert "'finetune' as its gold standard" in line and "'retrain'" in line, line


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_a_result_that_is_no_plain_file_is_refused_without_hanging(kind, tmp_path, capsys):
    folder = tmp_path / "s"
    folder.mkdir()
    path = folder / "seed_0.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps(stored_result()))
        path.symlink_to(target)
    else:
        path.symlink_to("/dev/zero")  # a device behind a link: refused as a link
    line = one_error(capsys, ["table", str(tmp_path)])
    assert str(path) in line, line


def test_a_run_into_a_folder_holding_a_fifo_refuses_before_training(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "tiny_backdoor").mkdir(parents=True)
    os.mkfifo(out / "tiny_backdoor" / "seed_0.json")
    line = one_error(capsys, ["run", str(tiny), "--out", str(out)])
    assert "seed_0.json" in line and "not a regular file" in line, line
    assert not list(Path(os.environ["FUBENCH_CACHE"]).glob("*.pt")), "trained before the check"
