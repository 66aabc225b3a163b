"""Changing a scenario from the command line: ``--set KEY=VALUE`` is read as YAML 1.2 and
checked exactly like the file (the same one-line errors, naming the file, the key and the
``--set``); a run with settings goes to a folder of its own and records them;
``--metrics a,b`` adds columns to the scenario's own results."""

from __future__ import annotations

import re

import pytest

from fubench.config.validate import load_scenario
from fubench.results import read_result
from tests.conftest import run_cli
from tests.test_ux import tiny_yaml


@pytest.mark.parametrize(
    "setting, expected",
    [
        (
            "federation.clients=0",
            "federation.clients: expected an integer >= 1, got 0 (from --set federation.clients=0)",
        ),
        ("federation.clientz=3", "federation.clientz: unknown key; did you mean 'clients'?"),
        (
            "methods.finetune.rounds=[1,1]",
            "methods.finetune.rounds[1]: value '1' is listed twice; its row would be the "
            "same as the earlier one's (from --set methods.finetune.rounds=[1, 1])",
        ),
        ("federation.clients=[1,", "federation.clients: --set federation.clients='[1,': invalid"),
        # YAML 1.2, as in the files: yes is a string, not true
        (
            "federation.rounds=yes",
            "expected an integer >= 1, got a string 'yes' (from --set federation.rounds=yes)",
        ),
        ("model.width=3", "model.width: unknown key; 'mnist_cnn' accepts: hidden (from --set"),
        ("methods.nosuch={}", "methods.nosuch: unknown method 'nosuch'"),
        ("federation.rounds.x=1", "--set federation.rounds.x: federation.rounds is an integer"),
    ],
)
def test_a_wrong_setting_is_the_files_one_line_error(
    setting, expected, test_registry, tmp_path, capsys
):
    file = tiny_yaml(tmp_path)
    assert run_cli("validate", str(file), "--set", setting) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"{file}: "), err
    assert expected in err[0], err[0]


@pytest.mark.parametrize(
    "argument, expected",
    [
        ("federation", "argument --set: expected KEY=VALUE"),
        (".x=1", "argument --set: expected a key of dot-separated names"),
    ],
)
def test_a_setting_that_is_no_assignment_is_a_usage_error(argument, expected, tmp_path, capsys):
    assert run_cli("validate", str(tiny_yaml(tmp_path)), "--set", argument) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_a_key_set_twice_is_refused(test_registry, tmp_path, capsys):
    file = tiny_yaml(tmp_path)
    args = ("--set", "federation.rounds=2", "--set", "federation.rounds=3")
    assert run_cli("validate", str(file), *args) == 2
    assert "--set gives federation.rounds twice" in capsys.readouterr().err


def test_settings_reach_every_part_of_the_file(test_registry, tmp_path):
    """Shorthands become mappings (``model: mnist_cnn``, a list of methods), new keys
    and new methods are added, sweeps expand; the name gets the settings' hash."""
    file = tiny_yaml(tmp_path, methods="[retrain, finetune]")
    settings = {
        "federation.rounds": 2,
        "model.hidden": 32,
        "methods.finetune.rounds": [1, 2],
        "methods.random_reset": {"gamma": 0.5},
    }
    config = load_scenario(file, test_registry, settings)
    assert config.federation.rounds == 2 and config.model.params["hidden"] == 32
    assert [m.label for m in config.methods] == [
        "retrain",
        "finetune[rounds=1]",
        "finetune[rounds=2]",
        "random_reset",
    ]
    assert re.fullmatch(r"tiny\+[0-9a-f]{8}", config.name)
    assert config.overrides == settings
    plain = load_scenario(file, test_registry)
    assert plain.name == "tiny" and plain.overrides == {}
    assert "overrides" not in plain.resolved(), "files run as written keep their hash"
    same = load_scenario(file, test_registry, dict(reversed(settings.items())))
    assert same.name == config.name, "the folder depends on the settings, not their order"


def test_a_run_with_settings_has_its_own_folder_and_records_them(test_registry, tmp_path, capsys):
    file = tiny_yaml(tmp_path, rounds=1)
    out = tmp_path / "out"
    assert run_cli("run", str(file), "--out", str(out), "-q", "--metrics", "mia_acc") == 0
    plain = read_result(out / "tiny" / "seed_0.json")
    assert "mia_acc" in plain["methods"]["finetune"]["metrics"], "--metrics adds a column"
    assert "overrides" not in plain["scenario"]
    before = (out / "tiny" / "seed_0.json").read_bytes()
    assert run_cli("run", str(file), "--out", str(out), "-q", "--set", "federation.rounds=2") == 0
    [changed] = [p for p in out.iterdir() if p.name != "tiny"]
    assert re.fullmatch(r"tiny\+[0-9a-f]{8}", changed.name)
    result = read_result(changed / "seed_0.json")
    assert result["scenario"]["name"] == changed.name
    assert result["scenario"]["overrides"] == {"federation.rounds": 2}
    assert result["scenario"]["config"]["federation"]["rounds"] == 2
    assert result["config_hash"] != plain["config_hash"]
    assert (out / "tiny" / "seed_0.json").read_bytes() == before, "the file's results untouched"
    assert f"## {changed.name} (backdoor" in capsys.readouterr().out


def test_metrics_added_to_a_kind_without_declared_defaults_is_a_clear_error(
    test_registry, tmp_path
):
    from fubench.config.overrides import add_metrics
    from fubench.errors import ConfigError

    with pytest.raises(ConfigError, match="declares no default_metrics; list them"):
        add_metrics({"scenario": {"kind": "x"}}, ["mia_acc"], None, "f.yaml")
    data = add_metrics({"metrics": ["nta", "asr"]}, ["asr", "mia_acc"], None, "f.yaml")
    assert data["metrics"] == ["nta", "asr", "mia_acc"]
