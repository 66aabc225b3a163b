"""The conformance kit (fubench.testing): every built-in component passes it, and each
kind of broken component fails it with a message naming the component, its plugin and
what to fix."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
import torch

import fubench
import fubench.testing as kit
from fubench.plugins import load_registry, reset_registry


def _builtin_entry_points():
    from fubench.plugins import BUILTIN_DISTRIBUTION, plugin_entry_points

    return [
        ep
        for ep in plugin_entry_points()
        if ep.dist is not None and ep.dist.name == BUILTIN_DISTRIBUTION
    ]


#: the built-ins only, whatever else happens to be installed in the environment
BUILTINS = kit.Kit(load_registry(entry_points=_builtin_entry_points()))


@pytest.mark.parametrize("case", BUILTINS.cases(builtin_only=True), ids=str)
def test_builtin_component_conforms(case):
    case.check()


def test_every_builtin_kind_is_exercised():
    """The kit runs on whatever kinds are registered, none of them skipped."""
    kinds = BUILTINS.registry.kinds.names()
    assert "backdoor" in kinds
    assert all(BUILTINS.stage(k).ok for k in kinds), [BUILTINS.stage(k).problems for k in kinds]


# ------------------------------------------------------------ deliberately broken


class Greedy(fubench.Unlearner):
    """Declares it needs only the requesting client, then trains every client."""

    name = "kit_greedy"
    participation = "requesting"

    def unlearn(self, ctx):
        return ctx.federation.train(ctx.model, rounds=1, clients=range(ctx.federation.n_clients))


class Shrinker(fubench.Unlearner):
    """Returns a model of another architecture."""

    name = "kit_shrinker"
    participation = "none"

    def unlearn(self, ctx):
        return torch.nn.Linear(2, 2)


class Dice(fubench.Unlearner):
    """Adds noise from torch's global RNG instead of ctx.generator."""

    name = "kit_dice"
    participation = "none"

    def unlearn(self, ctx):
        with torch.no_grad():
            for p in ctx.model.parameters():
                p.add_(torch.randn(p.shape) * 1e-3)
        return ctx.model


class Fragile(fubench.Unlearner):
    """Crashes on scenarios whose request has no target class."""

    name = "kit_fragile"
    participation = "none"

    def unlearn(self, ctx):
        return ctx.model if ctx.request.target_class is not None else {}["target"]


class Shy(fubench.Unlearner):
    """Declines everything."""

    name = "kit_shy"
    participation = "none"

    def unlearn(self, ctx):
        raise fubench.NotApplicable("never")


class Amnesia(fubench.Unlearner):
    """A well-behaved (if useless) method: the positive control."""

    name = "kit_amnesia"
    participation = "none"
    unsupported_kinds = {"bias": "not about colours"}

    def unlearn(self, ctx):
        return ctx.model


class NaNMetric(fubench.Metric):
    name = "kit_nan"

    def compute(self, ev):
        return float("nan")


class Overlapping(fubench.Partitioner):
    name = "kit_overlapping"

    def partition(self, labels, n_clients, generator):
        return [torch.arange(len(labels)) for _ in range(n_clients)]


def _plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, classes in hooks.items():
        setattr(module, hook, fubench.hookimpl(lambda classes=classes: classes))
    return module


BROKEN = _plugin(
    "kit_broken",
    fubench_unlearners=[Greedy, Shrinker, Dice, Fragile, Shy],
    fubench_metrics=[NaNMetric],
    fubench_partitioners=[Overlapping],
)
GOOD = _plugin("kit_good", fubench_unlearners=[Amnesia])


@pytest.fixture(scope="module")
def broken_kit():
    return kit.Kit(
        load_registry(extra_plugins=[BROKEN, GOOD], entry_points=_builtin_entry_points())
    )


def _failure(kit_: kit.Kit, what: str, name: str) -> str:
    with pytest.raises(kit.ConformanceError) as info:
        kit_.check(what, name)
    text = str(info.value)
    assert text.splitlines()[0] == (
        f"{what} '{name}' (plugin '{kit_.owner(what, name)}') fails the fubench conformance kit:"
    )
    return text


def test_participation_violation_is_reported(broken_kit):
    text = _failure(broken_kit, "method", "kit_greedy")
    assert "(plugin 'kit_broken')" in text
    line = next(li for li in text.splitlines() if "the federation refused a client" in li)
    assert line.startswith("  - on scenario kinds 'backdoor', ") and "'client'" in line
    assert "participation='requesting'" in text


def test_wrong_architecture_is_reported(broken_kit):
    assert "returned a model of another architecture" in _failure(
        broken_kit, "method", "kit_shrinker"
    )


def test_nondeterminism_is_reported(broken_kit):
    assert "two runs with the same seed gave different models" in _failure(
        broken_kit, "method", "kit_dice"
    )


def test_crash_on_a_kind_is_reported(broken_kit):
    text = _failure(broken_kit, "method", "kit_fragile")
    (line,) = text.splitlines()[1:]
    assert line.startswith("  - on scenario kinds ") and "'client'" in line
    # the message names the plugin's own line that raised, not the harness's
    assert re.search(
        r": unlearn\(\) raised KeyError: 'target' \(test_conformance\.py:\d+\)$", line
    ), line
    assert "'backdoor'" not in text, "the kinds it serves pass"


def test_method_that_declines_everything_fails(broken_kit):
    assert "declined every registered scenario kind" in _failure(broken_kit, "method", "kit_shy")


def test_nan_metric_is_reported(broken_kit):
    assert "returned nan (float); return None where it is undefined, never NaN" in _failure(
        broken_kit, "metric", "kit_nan"
    )


def test_overlapping_partitioner_is_reported(broken_kit):
    assert "an index appears twice" in _failure(broken_kit, "partitioner", "kit_overlapping")


def test_good_plugin_passes_and_declines_cleanly(broken_kit):
    broken_kit.check("method", "kit_amnesia")
    stage = broken_kit.stage("bias")
    assert broken_kit.unlearn(stage, "kit_amnesia").status == "n/a"


def test_public_helpers_select_a_plugin(broken_kit, capsys):
    registry = broken_kit.registry
    assert [str(c) for c in kit.cases("kit_good", registry)] == ["method:kit_amnesia"]
    kit.check_plugin("kit_good", registry)
    kit.check_unlearner("kit_amnesia", registry)
    with pytest.raises(kit.ConformanceError, match="no loaded plugin is called"):
        kit.cases("kit_nonexistent", registry)
    reset_registry(registry)
    assert kit.main(["kit_broken"]) == 1
    out = capsys.readouterr().out
    assert "method:kit_greedy" in out and "FAILED" in out and "partitioner:kit_overlapping" in out


# ------------------------------------------- errors a plugin author meets: one line


class Nameless(fubench.Unlearner):
    def unlearn(self, ctx):
        return ctx.model


def _wrong_argument(scenario, seed, methd, result):
    pass


def _unmarked():
    return []


WRONG_ARGUMENT = types.ModuleType("p_args")
WRONG_ARGUMENT.fubench_method_result = fubench.hookimpl(_wrong_argument)


@pytest.mark.parametrize(
    "module, expected",
    [
        (
            WRONG_ARGUMENT,
            "plugin 'p_args': hook fubench_method_result() has argument(s) methd that the hook "
            "does not provide; use any of: scenario, seed, method, result",
        ),
        (
            _plugin("p_nameless", fubench_unlearners=[Nameless]),
            "plugin 'p_nameless': Nameless has no `name`; set a class attribute name = \"...\"",
        ),
        (
            _plugin("p_bare", fubench_unlearners=Amnesia),
            "plugin 'p_bare': fubench_unlearners() returned "
            "<class 'tests.test_conformance.Amnesia'>; "
            "return a list of classes, e.g. [Amnesia]",
        ),
        (
            types.SimpleNamespace(__name__="p_unmarked", fubench_metrics=_unmarked),
            "plugin 'p_unmarked': fubench_metrics lacks the @fubench.hookimpl decorator, "
            "so fubench "
            "would never call it; decorate it",
        ),
    ],
    ids=["wrong-argument", "missing-name", "not-a-list", "undecorated"],
)
def test_plugin_errors_are_one_line_naming_plugin_and_fix(module, expected, capsys):
    """A broken plugin is skipped with one line; the others load."""
    registry = load_registry(extra_plugins=[GOOD, module], entry_points=[])
    name, problem = expected.split(": ", 1)
    assert capsys.readouterr().err.splitlines() == [
        f"fubench: {name} is broken and was skipped: {problem}; fix it"
    ]
    assert next(p for p in registry.plugins if p.name == module.__name__).problem == problem
    assert "kit_amnesia" in registry.methods, "the other plugins still load"


def test_a_name_registered_twice_stays_an_error():
    with pytest.raises(fubench.PluginError) as info:
        load_registry(
            extra_plugins=[GOOD, _plugin("p_twin", fubench_unlearners=[Amnesia])], entry_points=[]
        )
    assert str(info.value) == (
        "method 'kit_amnesia' is registered by two plugins: 'kit_good' "
        "and 'p_twin'; rename one or uninstall a plugin"
    )


def install_typo_plugin(tmp_path, monkeypatch) -> None:
    """An installed distribution (fu-typo 0.3) whose plugin module fails to import on its
    line 3."""
    (tmp_path / "fu_typo.py").write_text("import fubench\n\nfrom fubench import Unlerner\n")
    info = tmp_path / "fu-typo-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fu-typo\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[fubench]\ntypo = fu_typo\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_import_error_is_one_line_with_the_failing_line(tmp_path, monkeypatch, capsys):
    install_typo_plugin(tmp_path, monkeypatch)
    registry = load_registry()
    err = [line for line in capsys.readouterr().err.splitlines() if "typo" in line]
    assert err == [
        "fubench: plugin 'typo' (fu-typo 0.3) failed to import (fu_typo.py:3) and "
        "was skipped: ImportError: cannot import name 'Unlerner' from 'fubench' "
        f"({Path(fubench.__file__)}); fix it or `pip uninstall fu-typo` "
        "(FUBENCH_DISABLE_PLUGIN_AUTOLOAD=1 runs without third-party plugins, "
        "FUBENCH_PLUGINS=a,b with only those)"
    ]
    assert "retrain" in registry.methods.names(), "the others still load"


def test_the_kit_asked_about_a_plugin_that_cannot_import_prints_one_line(
    tmp_path, monkeypatch, capsys
):
    install_typo_plugin(tmp_path, monkeypatch)
    monkeypatch.delenv("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    reset_registry()  # the kit loads the installed plugins itself, as from a shell
    from fubench.testing.shell import run

    try:
        assert run(["typo"]) == 2
    finally:
        reset_registry()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(
        "fubench.testing: error: plugin 'typo' (fu-typo 0.3) failed to "
        "import (fu_typo.py:3): ImportError"
    )
