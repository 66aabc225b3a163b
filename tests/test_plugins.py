"""Plugin discovery through entry points, and the errors plugin authors meet."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
import types

import pytest

import fubench
from fubench.errors import PluginError, UnknownNameError
from fubench.plugins import load_registry
from tests.conftest import run_cli

GOOD_MODULE = """
import fubench

class Amnesia(fubench.Unlearner):
    '''Returns the model unchanged (a test plugin).'''
    name = "amnesia"
    def unlearn(self, ctx):
        return ctx.model

@fubench.hookimpl
def fubench_unlearners():
    return [Amnesia]
"""


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install a distribution on sys.path: a module plus .dist-info with entry points."""

    def install(dist: str, modules: dict[str, str], entry_points: dict[str, str]):
        for name, source in modules.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[fubench]\n{lines}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
        for name in modules:
            monkeypatch.delitem(sys.modules, name, raising=False)

    return install


def test_builtins_are_registered_through_entry_points():
    registry = load_registry()
    builtins = [p for p in registry.plugins if p.builtin]
    assert {"retrain", "finetune", "backdoor"} <= {p.name for p in builtins}
    assert all(p.distribution == "fubench" for p in builtins)
    assert {"retrain", "finetune"} <= set(registry.methods.names())


def test_third_party_plugin_is_discovered(fake_distribution, capsys):
    fake_distribution("fu-amnesia", {"fu_amnesia": GOOD_MODULE}, {"amnesia": "fu_amnesia"})
    registry = load_registry()
    assert "amnesia" in registry.methods.names()
    info = next(p for p in registry.plugins if p.name == "amnesia")
    assert (info.distribution, info.version, info.builtin) == ("fu-amnesia", "1.2.3", False)
    assert info.provides == {"method": ["amnesia"]}
    assert run_cli("plugins") == 0
    assert "fu-amnesia 1.2.3" in capsys.readouterr().out


def test_broken_plugin_is_reported_and_skipped(fake_distribution, capsys):
    fake_distribution(
        "fu-broken",
        {"fu_broken": "import not_a_module_anywhere\n", "fu_amnesia": GOOD_MODULE},
        {"broken": "fu_broken", "amnesia": "fu_amnesia"},
    )
    registry = load_registry()
    err = capsys.readouterr().err
    assert "plugin 'broken'" in err and "failed to import" in err and "not_a_module_anywhere" in err
    assert "amnesia" in registry.methods.names(), "the others still load"
    assert next(p for p in registry.plugins if p.name == "broken").problem


def test_env_switches(fake_distribution, monkeypatch):
    fake_distribution("fu-amnesia", {"fu_amnesia": GOOD_MODULE}, {"amnesia": "fu_amnesia"})
    monkeypatch.setenv("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_registry()
    assert "amnesia" not in registry.methods.names()
    assert "retrain" in registry.methods.names(), "built-ins always load"
    monkeypatch.delenv("FUBENCH_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("FUBENCH_PLUGINS", "something_else")
    assert "amnesia" not in load_registry().methods.names()
    monkeypatch.setenv("FUBENCH_PLUGINS", "amnesia")
    assert "amnesia" in load_registry().methods.names()


def plugin(**hooks) -> types.ModuleType:
    module = types.ModuleType(hooks.pop("__name", "local_plugin"))
    for name, fn in hooks.items():
        setattr(module, name, fubench.hookimpl(fn))
    return module


class Twin(fubench.Unlearner):
    name = "finetune"

    def unlearn(self, ctx):
        return ctx.model


def test_duplicate_name_names_both_plugins():
    with pytest.raises(
        PluginError, match="method 'finetune' is registered by two plugins: 'finetune' and 'twin'"
    ):
        load_registry(extra_plugins=[plugin(__name="twin", fubench_unlearners=lambda: [Twin])])


def skipped(module, capsys) -> tuple[str, object]:
    """Load the built-ins and ``module``; (the one stderr line, the registry)."""
    registry = load_registry(extra_plugins=[module])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert "retrain" in registry.methods, "the other plugins still load"
    return err[0], registry


def test_component_without_name(capsys):
    class Nameless(fubench.Unlearner):
        def unlearn(self, ctx):
            return ctx.model

    line, _ = skipped(
        plugin(__name="nameless_plugin", fubench_unlearners=lambda: [Nameless]), capsys
    )
    assert line.startswith(
        "fubench: plugin 'nameless_plugin' is broken and was skipped: Nameless has no `name`"
    )


def test_wrong_base_class(capsys):
    line, _ = skipped(plugin(fubench_unlearners=lambda: [object]), capsys)
    assert "expected a subclass of fubench.Unlearner" in line


def test_hook_with_wrong_argument_name(capsys):
    def fubench_method_result(scenario, seed, methd, result):
        pass

    line, registry = skipped(plugin(fubench_method_result=fubench_method_result), capsys)
    assert re.match("fubench: plugin 'local_plugin' is broken.*methd", line)
    assert registry.pm.get_plugin("local_plugin") is None, "its hooks are never called"


def test_misspelt_hook_gets_did_you_mean(capsys):
    line, _ = skipped(plugin(fubench_unlearner=lambda: []), capsys)
    assert "unknown hook 'fubench_unlearner'; did you mean 'fubench_unlearners'" in line


def test_registration_hook_that_raises_is_skipped(capsys):
    def boom():
        raise RuntimeError("kaput")

    registry = load_registry(extra_plugins=[plugin(__name="boom", fubench_metrics=boom)])
    assert "plugin 'boom' is broken and was skipped" in capsys.readouterr().err
    assert "test_acc" in registry.metrics.names()


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match="unknown method 'fintune'; did you mean 'finetune'"):
        load_registry().methods.get("fintune")


def test_lifecycle_hooks_are_called(test_registry, backdoor_yaml, tmp_path):
    from fubench.config.validate import load_scenario
    from fubench.plugins import load_registry, reset_registry
    from fubench.runner import Runner
    from tests.conftest import TEST_PLUGIN

    calls = []
    logger = plugin(
        __name="logger",
        fubench_run_start=lambda scenario, seeds, methods: calls.append(("start", methods)),
        fubench_method_result=lambda scenario, seed, method, result: calls.append(
            ("row", method, result["status"])
        ),
        fubench_run_end=lambda scenario, result_paths: calls.append(("end", len(result_paths))),
    )
    registry = load_registry(extra_plugins=[TEST_PLUGIN, logger])
    reset_registry(registry)
    config = load_scenario(backdoor_yaml(rounds=1), registry)
    Runner(config, registry, out=tmp_path / "out").run()
    assert calls[0] == ("start", ["retrain", "finetune"])
    assert ("row", "original", "ok") in calls and ("row", "finetune", "ok") in calls
    assert calls[-1] == ("end", 1)
