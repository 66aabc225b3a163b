"""The plugin API answers a plugin author's questions itself: a metric reaches the
original's and the gold standard's models through ``ev.model_of``; ``fubench show KIND``
lists the kind's default metrics; the docstrings say what ``Federation.ask`` returns and
``Federation.train``'s defaults; an "info" metric shows no direction; the kit says each
thing once."""

from __future__ import annotations

import re
import types

import pytest

import fubench
from fubench.plugins import load_registry, reset_registry
from fubench.results import read_result
from tests.conftest import TEST_PLUGIN, run_cli
from tests.test_ux import Amnesia, kit, tiny_yaml  # noqa: F401  (kit: a fixture)


class RefDistance(fubench.Metric):
    """Distance of the row's weights to the gold standard's, over the original's."""

    name = "ref_distance"
    role = "forgetting"
    ideal = 0.0

    def compute(self, ev):
        def distance(a, b):
            pairs = zip(a.parameters(), b.parameters())
            return sum(float((x - y).detach().pow(2).sum()) for x, y in pairs) ** 0.5

        gold = ev.model_of("reference")
        return distance(ev.model_of(), gold) / distance(ev.model_of("original"), gold)


class Loudness(fubench.Metric):
    """An information-only number that declares a direction anyway."""

    name = "loudness"
    role = "info"
    higher_is_better = False

    def compute(self, ev):
        return 1.0


PLUGIN = types.ModuleType("api_metrics")
PLUGIN.fubench_metrics = fubench.hookimpl(lambda: [RefDistance, Loudness])


@pytest.fixture
def api_registry():
    registry = load_registry(extra_plugins=[TEST_PLUGIN, PLUGIN])
    reset_registry(registry)
    return registry


def test_a_metric_reaches_the_reference_models_through_the_documented_api(api_registry, tmp_path):
    file = tiny_yaml(tmp_path, rounds=2)
    out = tmp_path / "out"
    assert run_cli("run", str(file), "--out", str(out), "-q", "--metrics", "ref_distance") == 0
    rows = read_result(out / "tiny" / "seed_0.json")["methods"]
    values = {label: row["metrics"]["ref_distance"] for label, row in rows.items()}
    assert values["retrain"] == 0.0 and values["original"] == pytest.approx(1.0)
    assert 0.0 < values["finetune"], values


def test_model_of_names_the_rows_it_offers(kit):  # noqa: F811
    stage = kit.stage("backdoor")
    original = stage.refs["original"]
    assert original.model_of() is original.model
    assert original.model_of("reference") is stage.job.reference.model
    assert original.model_of("retrain") is stage.job.reference.model, "its method name too"
    assert stage.refs["reference"].model_of("original") is stage.job.original.model
    with pytest.raises(KeyError, match="a metric reads 'self', 'original' or 'reference'"):
        original.model_of("finetune")
    assert original.value("test_acc", of="reference") == stage.refs["reference"].value("test_acc")


def test_show_lists_a_kinds_default_metrics(capsys):
    registry = load_registry()
    assert run_cli("show", "backdoor") == 0
    out = capsys.readouterr().out
    declared = ", ".join(registry.kinds.get("backdoor").default_metrics)
    assert re.search(rf"^default metrics \(.*--metrics a,b adds\):\n  {declared}$", out, re.M)
    assert re.search(r"^  and on every row: .*work_ratio", out, re.M)


def test_show_builds_a_kind_that_declares_no_metrics(capsys):
    from fubench_builtins.backdoor import Backdoor

    class Quiet(Backdoor):
        """A backdoor that keeps its metrics to itself."""

        name = "quiet_backdoor"
        default_metrics = ()

        def build(self, data, partition, generator):
            setup = super().build(data, partition, generator)
            setup.default_metrics = ["test_acc", "asr"]
            return setup

    module = types.ModuleType("quiet_kind")
    module.fubench_scenario_kinds = fubench.hookimpl(lambda: [Quiet])
    reset_registry(load_registry(extra_plugins=[module]))
    assert run_cli("show", "quiet_backdoor") == 0
    out = capsys.readouterr().out
    assert "  test_acc, asr (not declared by the kind: as build() returns them on the kit" in out


def test_the_kit_checks_a_declaration_against_build():
    from fubench_builtins.backdoor import Backdoor

    from fubench.testing import ConformanceError, Kit

    class Fibbing(Backdoor):
        """Declares one thing, builds another."""

        name = "fibbing_backdoor"
        default_metrics = ("test_acc",)

        def build(self, data, partition, generator):
            setup = super().build(data, partition, generator)
            setup.default_metrics = ["test_acc", "nta"]
            return setup

    module = types.ModuleType("fibbing_kind")
    module.fubench_scenario_kinds = fubench.hookimpl(lambda: [Fibbing])
    world = Kit(load_registry(extra_plugins=[module]))
    with pytest.raises(ConformanceError, match=r"but the class declares \['test_acc'\]"):
        world.check("scenario kind", "fibbing_backdoor")


def test_an_info_metric_shows_no_direction(api_registry):
    from fubench.report.table import header

    assert header("loudness", api_registry) == "loudness"
    assert header("seconds", api_registry) == "seconds ↓"


def test_the_federation_docstrings_answer_the_authors_questions():
    ask = " ".join(fubench.Federation.ask.__doc__.split())
    assert "Returns ``{client: what work returned}``, one entry per client asked" in ask
    assert "or ``None`` (nothing is sent back" in ask
    train = " ".join(fubench.Federation.train.__doc__.split())
    assert "``clients`` None trains on ``federation.retained_clients``" in train
    assert '``data`` "retained" is what each keeps' in train
    assert "``rounds`` None trains the scenario's ``federation.rounds``" in train


def test_a_work_function_may_return_none(kit):  # noqa: F811
    ctx = kit.context(kit.stage("backdoor"), Amnesia)
    federation = ctx.federation
    answers = federation.ask(federation.requesting, lambda model, client: None, ctx.model)
    assert answers == dict.fromkeys(federation.requesting)
    assert federation.stats.rounds == 1 and federation.stats.bytes > 0


def test_the_kit_says_each_thing_once(capsys):
    from fubench.testing import Kit

    world = Kit(load_registry())
    for kind in ("backdoor", "class"):
        world.stage(kind)
        world.unlearn(world.stage(kind), "finetune")
        world.unlearn(world.stage(kind), "finetune")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "fubench.testing: training the tiny 'backdoor' scenario's original and gold-standard "
        "models (once, for every check)",
        "fubench.testing: training the tiny 'class' scenario's original and gold-standard "
        "models (once, for every check)",
    ]
