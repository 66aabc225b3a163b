"""Metrics every scenario can use: accuracy, forgetting, time and communication.
Definitions: docs/methods.md; θ^i is the original model, θ^r the gold standard
(retrain), θ^u the row."""

from __future__ import annotations

import fubench
from fubench import Evaluation, Metric, ratio


class TestAccuracy(Metric):
    """Accuracy on the clean test set."""

    name = "test_acc"
    higher_is_better = True
    role = "utility"
    percent = True

    def compute(self, ev: Evaluation) -> float | None:
        return ev.accuracy("test")


class NormalisedTestAccuracy(Metric):
    """NTA = test_acc(θ^u) / test_acc(θ^r)."""

    name = "nta"
    higher_is_better = True
    ideal = 1.0  # above 1 overshoots the gold standard (e.g. it lacks the forgotten class)
    role = "utility"
    normalises = "test_acc"

    def compute(self, ev: Evaluation) -> float | None:
        return ratio(ev.value("test_acc"), ev.value("test_acc", of=fubench.REFERENCE))


class TargetAccuracy(Metric):
    """Accuracy on the forget set D_T (the samples the request covers)."""

    name = "target_acc"
    higher_is_better = None
    ideal = fubench.REFERENCE  # as accurate on D_T as the gold standard, no more, no less
    original_side = "above"  # the original still carries it: the metric reads higher
    role = "forgetting"
    percent = True
    # within 2 points of retrain on the same seed: about the binomial standard error of an
    # accuracy on a forget set of a few hundred samples
    success_margin = 2.0

    def compute(self, ev: Evaluation) -> float | None:
        return ev.accuracy("forget")


class NormalisedForgettingScore(Metric):
    """NFS = (target_acc(θ^i) − target_acc(θ^u)) / (target_acc(θ^i) − target_acc(θ^r));
    1 = forgot as much as retraining, 0 = forgot nothing. Undefined when the original
    and retrain do not differ on D_T."""

    name = "nfs"
    higher_is_better = True
    ideal = 1.0  # forgot exactly as much as the gold standard; above 1 overshoots
    role = "forgetting"
    success_margin = 0.1  # closed the original–retrain gap to within a tenth of it
    normalises = "target_acc"
    normalisation = "gap"

    def compute(self, ev: Evaluation) -> float | None:
        original = ev.value("target_acc", of="original")
        if original is None:
            return None
        own, reference = ev.value("target_acc"), ev.value("target_acc", of=fubench.REFERENCE)
        if own is None or reference is None:
            return None
        return ratio(original - own, original - reference)


class Seconds(Metric):
    """Wall time of the unlearning (for original and retrain: their training), on the
    hardware and thread count the row records in ``timed_on``. A shared computation
    answered from an earlier sweep point (``Federation.ask(share=...)``) counts with the
    time it took when it ran."""

    name = "seconds"
    higher_is_better = False
    role = "cost"
    timed = True

    def compute(self, ev: Evaluation) -> float | None:
        return ev.info.seconds


class RelativeTimeToRetrain(Metric):
    """RTR = seconds / retrain seconds, retrain timed on the same hardware and thread
    count (re-timed there when its cached timing came from elsewhere)."""

    name = "rtr"
    higher_is_better = False
    role = "cost"
    timed = True
    normalises = "seconds"

    def compute(self, ev: Evaluation) -> float | None:
        return ratio(ev.value("seconds"), ev.value("seconds", of=fubench.REFERENCE))


class Work(Metric):
    """Work the row asked of clients and server, in GFLOP (10^9 floating-point
    operations), counted, not timed, so the same on every machine: the FLOPs of matrix
    products and convolutions that ``torch.utils.flop_counter`` counts — FedAvg
    training as samples processed × one sample's forward and backward FLOPs, the work
    it asks clients for (e.g. curvature passes) and its own server computations as they
    run. For original and retrain: their training."""

    name = "work"
    higher_is_better = False
    role = "cost"
    always = True

    def compute(self, ev: Evaluation) -> float | None:
        return None if ev.info.work is None else ev.info.work / 1e9


class WorkRatio(Metric):
    """work / retrain's work: the share of retraining's computation the method needed
    (exact, and identical on any machine)."""

    name = "work_ratio"
    higher_is_better = False
    role = "cost"
    normalises = "work"
    always = True

    def compute(self, ev: Evaluation) -> float | None:
        own, reference = ev.info.work, ev.value("work", of=fubench.REFERENCE)
        if own is None or reference is None:
            return None
        return ratio(own / 1e9, reference)


class ClientsInvolved(Metric):
    """How many distinct clients the method asked for work."""

    name = "clients_involved"
    higher_is_better = False
    role = "cost"
    count = True

    def compute(self, ev: Evaluation) -> float | None:
        return ev.info.clients_involved


class CommRounds(Metric):
    """Communication rounds the method used."""

    name = "comm_rounds"
    higher_is_better = False
    role = "cost"
    count = True

    def compute(self, ev: Evaluation) -> float | None:
        return ev.info.comm_rounds


class CommBytes(Metric):
    """Bytes that crossed the network (model down, results up)."""

    name = "comm_bytes"
    higher_is_better = False
    role = "cost"
    count = True

    def compute(self, ev: Evaluation) -> float | None:
        return ev.info.comm_bytes


@fubench.hookimpl
def fubench_metrics() -> list[type[Metric]]:
    return [
        TestAccuracy,
        NormalisedTestAccuracy,
        TargetAccuracy,
        NormalisedForgettingScore,
        Seconds,
        RelativeTimeToRetrain,
        Work,
        WorkRatio,
        ClientsInvolved,
        CommRounds,
        CommBytes,
    ]
