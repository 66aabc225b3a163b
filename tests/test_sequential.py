"""The ``sequential`` scenario kind (a request stream): its validation, how its requests
compose, and known answers on tiny data (the gold standard scores the ideal at every
request, a method that does nothing keeps what it should forget, a history method gets
its own trajectory's rounds, two runs give the same bits)."""

from __future__ import annotations

import textwrap
import types
from pathlib import Path

import pytest
import torch

import fubench
from fubench.config.validate import load_scenario
from fubench.data import load as load_data
from fubench.engine.cache import ModelCache
from fubench.errors import ConfigError
from fubench.fl.history import flatten
from fubench.plugins import load_registry, reset_registry
from fubench.results import read_result
from fubench.runner import Runner
from tests.conftest import TEST_PLUGIN

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
version: 1
name: tiny_sequential
dataset: {name: tiny_images, test_fraction: 0.3}
model: {name: mnist_cnn}
federation:
  clients: 3
  partition: {name: iid}
  rounds: 6
  local_epochs: 1
  batch_size: 32
  lr: 0.05
  momentum: 0.9
scenario:
  kind: sequential
  requests:
    - {round: 2, kind: client, client: 1}
    - {round: 3, kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}
    - {round: 5, kind: class, target_class: 3}
methods: {retrain: {}, noop: {}, probe: {}}
metrics: [test_acc, nta, nta@1, nfs@1, nta@2, asr@2, nfs@2, nta@3, nfs@3, asr@2.end, seconds]
seeds: [0]
device: cpu
"""
#: the requests' rounds in TINY
ROUNDS = (2, 3, 5)


class Noop(fubench.Unlearner):
    """Unlearns nothing: returns the model it is given."""

    name = "noop"

    def unlearn(self, ctx):
        return ctx.model


class Probe(fubench.Unlearner):
    """Records the round history it is given at each request and returns the model
    halved, so that its own trajectory differs from every other."""

    name = "probe"
    needs_history = True
    seen: list[dict] = []

    def unlearn(self, ctx):
        history = ctx.history
        model = ctx.model
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.5)
        Probe.seen.append(
            {
                "rounds": len(history),
                "globals": {r: history[r].global_state for r in range(len(history))},
                "clients": {r: set(history[r].updates) for r in range(len(history))},
                "returned": flatten(model.state_dict()).float(),
            }
        )
        return model


EXTRA = types.ModuleType("sequential_test_methods")
EXTRA.fubench_unlearners = fubench.hookimpl(lambda: [Noop, Probe])


def registry():
    reg = load_registry(extra_plugins=[TEST_PLUGIN, EXTRA])
    reset_registry(reg)
    return reg


def write(tmp: Path, text: str = TINY) -> Path:
    path = tmp / "tiny_sequential.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def run(tmp: Path) -> dict:
    reg = registry()
    config = load_scenario(write(tmp), reg)
    runner = Runner(config, reg, out=tmp / "out", cache=ModelCache(enabled=False))
    return read_result(runner.run()[0])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    Probe.seen.clear()
    result = run(tmp_path_factory.mktemp("sequential"))
    return result, list(Probe.seen)


# ------------------------------------------------------------------ known answers
@pytest.mark.training
def test_the_gold_standard_scores_the_ideal_at_every_request(tiny_run):
    result, _ = tiny_run
    rows = result["methods"]
    assert set(rows) == {"original", "retrain", "noop", "probe"}
    gold = rows["retrain"]["metrics"]
    for metric in ("nta", "nta@1", "nta@2", "nta@3", "nfs@2"):
        assert gold[metric] == pytest.approx(1.0), metric
    assert gold["asr@2"] == pytest.approx(0.0, abs=0.1)
    # the original learned the backdoor before it was reported: there is something to forget
    assert rows["original"]["metrics"]["asr@2"] > 0.5


@pytest.mark.training
def test_a_method_that_does_nothing_keeps_the_backdoor(tiny_run):
    result, _ = tiny_run
    noop = result["methods"]["noop"]["metrics"]
    original = result["methods"]["original"]["metrics"]
    assert noop["nta@1"] == pytest.approx(original["nta@1"])  # it is the original at r_1
    assert noop["nfs@2"] == pytest.approx(0.0, abs=0.2)
    assert noop["asr@2"] > 0.5
    # cost adds up over the unlearning steps only: doing nothing costs (almost) nothing
    assert noop["seconds"] < result["methods"]["retrain"]["metrics"]["seconds"]


@pytest.mark.training
def test_a_history_method_gets_its_own_trajectory(tiny_run):
    _, seen = tiny_run
    assert [s["rounds"] for s in seen] == list(ROUNDS), "the rounds before each request"
    first, second, third = seen
    # rounds before the first request are the original's, shared by every trajectory
    for r in range(ROUNDS[0]):
        assert torch.equal(second["globals"][r], first["globals"][r])
    # the round after request 1 starts from the model the probe itself returned then,
    # and the client that left with request 1 trains no more
    resumed = second["globals"][ROUNDS[0]]
    assert torch.allclose(resumed, first["returned"], atol=1e-6)
    for r in range(ROUNDS[0], ROUNDS[2]):
        assert 1 not in third["clients"][r]
    assert torch.allclose(third["globals"][ROUNDS[1]], second["returned"], atol=1e-6)


@pytest.mark.training
def test_two_runs_give_the_same_bits(tiny_run, tmp_path):
    first, _ = tiny_run
    again = run(tmp_path)
    timed = {"seconds", "rtr", "work", "work_ratio"}
    for label, row in first["methods"].items():
        a = {k: v for k, v in row["metrics"].items() if k not in timed}
        b = {k: v for k, v in again["methods"][label]["metrics"].items() if k not in timed}
        assert a == b, label


@pytest.mark.training
def test_the_progress_counts_every_training_of_the_stream_references(tmp_path):
    """The whole-run ETA counts a stream's reference trainings: the original to each
    request and on to the end (6 rounds), the gold standard from scratch at each request
    (2 + 3 + 5) and the last one on to the end (1); none once the cache holds them."""
    reg = registry()
    config = load_scenario(write(tmp_path), reg)
    cache = ModelCache(tmp_path / "cache")
    data = load_data(config, reg)
    runner = Runner(config, reg, out=tmp_path / "out", cache=cache)
    assert runner.workload(data, {0: []}).reference_rounds == {0: 6 + (2 + 3 + 5) + 1}
    runner.run()
    again = Runner(config, reg, out=tmp_path / "out", cache=cache)
    assert again.workload(data, {0: []}).reference_rounds == {0: 0}


# ------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "round: 3, kind: backdoor",
            "round: 2, kind: backdoor",
            r"requests\[1\]\.round: expected a round after",
        ),
        (
            "round: 5, kind: class",
            "round: 6, kind: class",
            r"requests\[2\]\.round: expected a round below",
        ),
        ("kind: class, target_class: 3", "kind: nope, target_class: 3", r"requests\[2\]\.kind"),
        (
            "kind: class, target_class: 3",
            "kind: sequential, requests: []",
            r"is a stream of requests",
        ),
        ("target_class: 3}", "target_class: 3, colour: red}", r"requests\[2\]\.colour"),
        ("client: 1}", "client: 7}", r"requests\[0\]\.client"),
        ("nfs@3, asr", "nfs@4, asr", r"metrics\[8\]: 'nfs@4'"),
    ],
)
def test_bad_requests_are_one_line_errors_naming_the_key(tmp_path, old, new, message):
    assert old in TINY
    with pytest.raises(ConfigError, match=message):
        load_scenario(write(tmp_path, TINY.replace(old, new)), registry())


def test_a_metric_at_a_request_needs_a_stream(backdoor_yaml, test_registry):
    path = backdoor_yaml()
    path.write_text(path.read_text() + "metrics: [nta@1]\n")
    with pytest.raises(ConfigError, match=r"metrics\[0\]: 'nta@1' names a request"):
        load_scenario(path, test_registry)


def test_the_mnist_scenario_file_validates_offline():
    config = load_scenario(ROOT / "scenarios" / "sequential_mnist.yaml", registry())
    requests = config.scenario.params["requests"]
    assert [r["round"] for r in requests] == [5, 7, 12]
    assert [r["kind"] for r in requests] == ["class", "class", "backdoor"]


# ------------------------------------------------------------------ composition
def stream(*requests: dict):
    from fubench_builtins.sequential import Sequential

    kind = Sequential(requests=list(requests))
    kind.bind(registry())
    return kind


def test_each_stage_holds_what_earlier_requests_left():
    from fubench_builtins.partitioners import IID

    from tests.test_scenarios import gen, images

    data = images(n=300)
    parts = IID().partition(data.y_train, 3, gen())
    kind = stream(
        {"round": 1, "kind": "client", "client": 1},
        {"round": 2, "kind": "class", "target_class": 3},
    )
    first, second = kind.stages(data, parts, gen())
    assert [len(s) for s in first.setup.train] == [len(p) for p in parts]
    assert len(first.setup.retained[1]) == 0 and first.setup.request.clients == (1,)
    # request 2 finds client 1 gone: it forgets class 3 on clients 0 and 2 only
    assert [len(s) for s in second.setup.train] == [len(s) for s in first.setup.retained]
    assert second.setup.request.clients == (0, 2)
    for c in (0, 2):
        kept = second.setup.retained[c]
        assert 3 not in kept.y.tolist() and len(kept) == int((second.setup.train[c].y != 3).sum())
    assert (second.setup.eval_sets["forget"].y == 3).all()
    assert first.setup.forgotten_behaviour == "target_acc"
    # all at once (the stream as one request): everything forgotten, from the data of round 0
    summary = kind.build(data, parts, gen())
    assert [len(s) for s in summary.retained] == [len(s) for s in second.setup.retained]
    assert set(summary.request.clients) == {0, 1, 2}


@pytest.mark.parametrize(
    "requests, message",
    [
        (
            [{"round": 1, "kind": "sensitive", "client": 0, "region": [0, 0, 4, 4]}],
            r"scenario.requests\[0\]: kind 'sensitive' prepares other data",
        ),
        (
            [
                {"round": 1, "kind": "backdoor", "client": 0},
                {"round": 2, "kind": "backdoor", "client": 0, "target_label": 1},
            ],
            r"scenario.requests\[1\]: kind 'backdoor' changes client 0's data",
        ),
        (
            [
                {"round": 1, "kind": "client", "client": 1},
                {"round": 2, "kind": "client", "client": 1},
            ],
            r"scenario.requests\[1\]: the 'client' request forgets nothing",
        ),
    ],
)
def test_requests_that_cannot_compose_are_refused(requests, message):
    from fubench_builtins.partitioners import IID

    from tests.test_scenarios import gen, images

    data = images(n=300)
    parts = IID().partition(data.y_train, 3, gen())
    with pytest.raises(ValueError, match=message):
        stream(*requests).stages(data, parts, gen())
