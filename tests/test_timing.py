"""Timings that say whether they can be trusted (fubench.engine.timing), and the thread
count every task runs at unless told otherwise."""

from __future__ import annotations

import os
import types

import pytest

from fubench.engine import timing
from fubench.engine.timing import Stopwatch
from fubench.executors import Execution


@pytest.fixture
def clock(monkeypatch):
    """Clocks the test moves by hand: ``clock.tick(wall, cpu)``; a quiet machine's load."""
    now = {"wall": 100.0, "cpu": 10.0}
    fake = types.SimpleNamespace(
        perf_counter=lambda: now["wall"],
        process_time=lambda: now["cpu"],
        tick=lambda wall, cpu: now.update(wall=now["wall"] + wall, cpu=now["cpu"] + cpu),
    )
    monkeypatch.setattr(timing, "time", fake)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    return fake


def test_a_wait_for_the_cpu_is_flagged_as_contention(clock):
    watch = Stopwatch.started(threads=1)
    clock.tick(wall=2.0, cpu=0.6)  # the thread had a core 30% of the time
    report = watch.stop().report()
    assert report["contended"] is True and report["cpu_share"] == pytest.approx(0.3)


def test_work_that_had_the_cpu_is_not_flagged(clock):
    watch = Stopwatch.started(threads=1)
    clock.tick(wall=2.0, cpu=1.95)
    report = watch.stop().report()
    assert report["contended"] is False and report["cpu_share"] > 0.75


def test_a_machine_loaded_beyond_its_cores_is_flagged(clock, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (timing.cpu_count() + 3.0, 0, 0))
    watch = Stopwatch.started(threads=1)
    clock.tick(wall=2.0, cpu=1.95)
    assert watch.stop().report()["contended"] is True


def test_time_charged_from_a_shared_pass_counts_in_seconds_not_in_the_verdict(clock):
    watch = Stopwatch.started(threads=1)
    clock.tick(wall=1.0, cpu=1.0)
    watch.stop(extra_seconds=10.0)
    assert watch.seconds == pytest.approx(11.0) and watch.report()["contended"] is False


def test_too_short_to_judge_is_not_flagged(clock):
    watch = Stopwatch.started(threads=1)
    clock.tick(wall=0.1, cpu=0.0)
    report = watch.stop().report()
    assert report["cpu_share"] is None and report["contended"] is False


@pytest.mark.parametrize("jobs", [1, 2, 8])
def test_every_task_runs_one_thread_whatever_jobs(jobs):
    import torch

    execution = Execution("local", jobs, None, None, torch.device("cpu"))
    assert execution.threads(n_tasks=3) == 1
    assert Execution("local", jobs, None, 2, torch.device("cpu")).threads(3) == 2


def test_a_table_flags_rows_timed_on_a_contended_machine():
    from fubench.plugins import get_registry
    from fubench.report import render_report
    from tests.test_leaderboard import metrics, result, row

    slow = row(metrics(0.9, 0.02, 9.0, 0.9))
    slow["timing"] = {"threads": 1, "cpu_share": 0.31, "load": 6.2, "contended": True}
    quiet = row(metrics(0.9, 0.02, 3.0, 0.3))
    quiet["timing"] = {"threads": 1, "cpu_share": 0.99, "load": 0.4, "contended": False}
    text = render_report(
        [result(0, {"finetune": slow}), result(1, {"finetune": quiet})], get_registry()
    )
    assert (
        "timed on a contended machine (CPU share below 0.75 or load above the cores + 1) — "
        "seed 0: finetune. Their seconds and rtr read slower than on a quiet machine; their "
        "work does not" in text
    )
    assert "retrain" not in text.split("timed on a contended machine")[1].split("\n")[0]


def test_contended_rows_are_grouped_by_their_seeds():
    from fubench.report.table import seed_span

    assert seed_span((0, 1, 2), 3) == "all 3 seeds"
    assert seed_span((3, 4, 5, 6), 10) == "seeds 3–6"
    assert seed_span((0, 4), 10) == "seeds 0, 4"
    assert seed_span((7,), 10) == "seed 7"
