"""Scenario validation: every malformed input is one line naming file, key and
expectation; `fubench validate` exits 2 without a traceback."""

from __future__ import annotations

import pytest

from fubench.config.validate import apply_overrides, load_scenario
from fubench.errors import ConfigError
from tests.conftest import BACKDOOR_YAML, run_cli

GOOD = BACKDOOR_YAML.format(name="ok", dataset="mnist", rounds=2)


def replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


def test_good_file_loads(write_yaml):
    config = load_scenario(write_yaml(GOOD))
    assert config.kind == "backdoor"
    assert config.federation.clients == 3
    assert [m.label for m in config.methods] == ["retrain", "finetune"]
    assert config.methods[1].params["rounds"] == 1
    assert config.resolved()["federation"]["partition"] == {"name": "iid"}


BAD = [
    # (what, file text, key named in the message, words in the message)
    ("unknown top-level key", GOOD + "seeed: [1]\n", "seeed", "did you mean 'seeds'"),
    (
        "unknown nested key",
        replace("rounds: 2", "rounds: 2\n  roundz: 3"),
        "federation.roundz",
        "unknown key",
    ),
    ("duplicate key", replace("rounds: 2", "rounds: 2\n  rounds: 3"), "", "duplicate key 'rounds'"),
    ("wrong type", replace("rounds: 2", "rounds: two"), "federation.rounds", "expected an integer"),
    ("float for int", replace("rounds: 2", "rounds: 2.5"), "federation.rounds", "integer"),
    ("bool for int", replace("rounds: 2", "rounds: true"), "federation.rounds", "integer"),
    ("missing required", replace("  clients: 3\n", ""), "federation.clients", "missing required"),
    ("missing section", replace("model: {name: mnist_cnn}\n", ""), "model", "missing required"),
    ("negative clients", replace("clients: 3", "clients: -3"), "federation.clients", ">= 1"),
    ("zero lr", replace("lr: 0.05", "lr: 0"), "federation.lr", "> 0"),
    (
        "fraction above 1",
        replace("local_epochs: 1", "local_epochs: 1\n  client_fraction: 1.5"),
        "federation.client_fraction",
        "<= 1",
    ),
    (
        "alpha <= 0",
        replace("{name: iid}", "{name: dirichlet, alpha: 0}"),
        "federation.partition.alpha",
        "> 0",
    ),
    (
        "negative alpha",
        replace("{name: iid}", "{name: dirichlet, alpha: -1.5}"),
        "federation.partition.alpha",
        "> 0",
    ),
    (
        "unknown partitioner",
        replace("{name: iid}", "{name: dirichlett}"),
        "federation.partition.name",
        "did you mean 'dirichlet'",
    ),
    (
        "target label out of range",
        replace("target_label: 9", "target_label: 10"),
        "scenario.target_label",
        "0..9",
    ),
    ("client out of range", replace("client: 0,", "client: 3,"), "scenario.client", "0..2"),
    (
        "unknown kind",
        replace("kind: backdoor", "kind: backdor"),
        "scenario.kind",
        "did you mean 'backdoor'",
    ),
    (
        "unknown scenario key",
        replace("poison_fraction: 0.5", "poison_fraction: 0.5, colour: red"),
        "scenario.colour",
        "accepts",
    ),
    (
        "bad choice",
        replace("poison_fraction: 0.5", "poison_fraction: 0.5, trigger: star"),
        "scenario.trigger",
        "one of",
    ),
    (
        "unknown method",
        replace("finetune: {rounds: 1}", "finetun: {}"),
        "methods.finetun",
        "did you mean 'finetune'",
    ),
    (
        "unknown method parameter",
        replace("{rounds: 1}", "{roundss: 1}"),
        "methods.finetune.roundss",
        "did you mean 'rounds'",
    ),
    (
        "bad method parameter",
        replace("{rounds: 1}", "{rounds: 0}"),
        "methods.finetune.rounds",
        ">= 1",
    ),
    (
        "unknown dataset",
        replace("name: mnist,", "name: mnsit,"),
        "dataset.name",
        "did you mean 'mnist'",
    ),
    ("unknown model", replace("mnist_cnn", "mnist_cn"), "model.name", "did you mean 'mnist_cnn'"),
    ("bad seeds", replace("seeds: [0]", "seeds: [-1]"), "seeds[0]", ">= 0"),
    ("repeated seed", replace("seeds: [0]", "seeds: [1, 1]"), "seeds", "twice"),
    ("bad device", replace("device: cpu", "device: gpu"), "device", "auto, cpu"),
    ("unknown version", replace("version: 1", "version: 7"), "version", "expected one of"),
    (
        "unknown metric",
        GOOD + "metrics: [asr, test_accc]\n",
        "metrics[1]",
        "did you mean 'test_acc'",
    ),
    (
        "test fraction",
        replace("test_fraction: 0.3", "test_fraction: 1.5"),
        "dataset.test_fraction",
        "<= 0.9",
    ),
    (
        "not a mapping",
        replace("model: {name: mnist_cnn}", "model: [mnist_cnn]"),
        "model",
        "expected a mapping",
    ),
]


@pytest.mark.parametrize("what,text,key,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_line(write_yaml, capsys, what, text, key, words):
    path = write_yaml(text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert key in message and words in message, message

    assert run_cli("validate", str(path)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err


def test_invalid_yaml_names_the_line(write_yaml):
    with pytest.raises(ConfigError, match=r"line \d+: invalid YAML"):
        load_scenario(write_yaml("version: 1\ndataset: {name: mnist\n"))


def test_empty_and_missing_files(write_yaml, tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        load_scenario(write_yaml(""))
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_sweep_expands_to_one_row_per_value(write_yaml):
    config = load_scenario(write_yaml(replace("{rounds: 1}", "{rounds: [1, 2, 3]}")))
    labels = [m.label for m in config.methods]
    assert labels == ["retrain", "finetune[rounds=1]", "finetune[rounds=2]", "finetune[rounds=3]"]
    assert [m.params["rounds"] for m in config.methods[1:]] == [1, 2, 3]


def test_sweep_values_are_each_validated(write_yaml):
    with pytest.raises(ConfigError, match=r"methods\.finetune\.rounds\[1\]"):
        load_scenario(write_yaml(replace("{rounds: 1}", "{rounds: [1, -2]}")))


def test_cli_overrides_select_methods_and_seeds(write_yaml):
    config = apply_overrides(load_scenario(write_yaml(GOOD)), methods=["finetune"], seeds=[4, 5])
    assert [m.name for m in config.methods] == ["finetune"] and config.seeds == [4, 5]


@pytest.mark.training
def test_shipped_scenarios_validate(capsys):
    from pathlib import Path

    files = sorted(str(p) for p in Path(__file__).parent.parent.glob("scenarios/*.yaml"))
    assert files
    assert run_cli("validate", *files) == 0
