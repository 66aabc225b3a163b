"""``fubench verify RESULTS``: the stored numbers come from the code.

For every scenario under RESULTS, the named seeds and methods are run again — from the
scenario file the results name, with this checkout's code, from an empty private model
cache, into a private folder — and each new row is compared with the stored one:

* **bit for bit** where the stored row was computed on the same instruction set with the
  same Python, torch and NumPy, on a CPU in its reproducible mode (the provenance says
  so): every metric but the clock's (``Metric.timed``) must be identical;
* otherwise **within the spread**: each metric must lie within the range of the stored
  seeds' values of that row, and every claim's verdict and every method's rank interval
  must stay what it is with the new rows in place of the stored ones.

Each row gets a verdict; any mismatch makes the command exit 1.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fubench.config.validate import apply_overrides, load_scenario
from fubench.engine.cache import ModelCache
from fubench.errors import FubenchError
from fubench.registry import Registry
from fubench.report.reader import Result, by_scenario, load_results
from fubench.results import ORIGINAL, provenance, read_result
from fubench.runner import Runner

#: the verdict of a stored row whose method is not installed here
NOT_CHECKED = "not checked"
#: what a stored row's provenance must share with this machine for bit-for-bit equality
SAME_BITS = ("instruction_set", "python", "torch", "numpy")


@dataclass
class RowVerdict:
    scenario: str
    seed: int
    label: str
    ok: bool
    verdict: str  # "identical" | "within the spread" | "differs" | "not checked" | ...
    detail: str = ""

    def line(self) -> str:
        mark = "-- " if self.verdict == NOT_CHECKED else "ok " if self.ok else "!! "
        detail = f": {self.detail}" if self.detail else ""
        return f"{mark}{self.scenario} seed {self.seed} {self.label}: {self.verdict}{detail}"


class VerifyError(FubenchError):
    """What ``verify`` was asked cannot be checked (no scenario file, unknown seed)."""


def verify(
    paths: list[str],
    registry: Registry,
    seeds: list[int] | None = None,
    methods: list[str] | None = None,
    device: str | None = None,
    jobs: int | None = None,
) -> list[RowVerdict]:
    """Run the named rows again and compare; one verdict per row."""
    verdicts: list[RowVerdict] = []
    for scenario, stored in by_scenario(load_results(paths, registry)).items():
        verdicts += _verify_scenario(scenario, stored, registry, seeds, methods, device, jobs)
    return verdicts


def _verify_scenario(
    scenario: str,
    stored: list[Result],
    registry: Registry,
    seeds: list[int] | None,
    methods: list[str] | None,
    device: str | None,
    jobs: int | None,
) -> list[RowVerdict]:
    file = stored[0]["scenario"].get("file")
    if not file or not Path(file).is_file():
        raise VerifyError(
            f"{scenario}: its results name the scenario file {file!r}, which is not here; "
            f"run verify from the repository the results came from"
        )
    stored_seeds = [r["seed"] for r in stored]
    wanted = stored_seeds if seeds is None else seeds
    missing = [s for s in wanted if s not in stored_seeds]
    if missing:
        raise VerifyError(f"{scenario}: no stored result for seed(s) {missing}")
    reference = stored[0].get("reference") or registry.reference_name
    names = sorted(
        {
            row["method"]
            for r in stored
            for row in r["methods"].values()
            if row.get("method") not in (ORIGINAL, reference)
        }
    )
    if methods is not None:
        names = [n for n in names if n in methods]
    absent = [] if methods is not None else [n for n in names if n not in registry.methods]
    names = [n for n in names if n not in absent]
    # settings a run was given on the command line (--set) apply again
    config = load_scenario(file, registry, stored[0]["scenario"].get("overrides"))
    config = apply_overrides(config, methods=names, seeds=wanted, device=device, registry=registry)
    with tempfile.TemporaryDirectory(prefix="fubench-verify-") as tmp:
        cache = ModelCache(Path(tmp) / "cache")  # empty: nothing from earlier runs
        runner = Runner(config, registry, out=Path(tmp) / "out", cache=cache, jobs=jobs)
        fresh = {r["seed"]: r for r in map(read_result, runner.run())}
    here = provenance(runner.plan.device, registry.loaded_versions())
    verdicts = []
    by_seed = {r["seed"]: r for r in stored}
    for seed in wanted:
        old, new = by_seed[seed], fresh[seed]
        if old["config_hash"] != new["config_hash"]:
            verdicts.append(
                RowVerdict(
                    scenario,
                    seed,
                    "*",
                    False,
                    "differs",
                    f"the scenario's configuration changed (config hash {old['config_hash']} "
                    f"stored, {new['config_hash']} now)",
                )
            )
            continue
        for label, row in new["methods"].items():
            verdicts.append(
                _compare(scenario, seed, label, old["methods"].get(label), row, old, here, stored)
            )
        verdicts += _not_installed(scenario, seed, old, absent)
    if any(v.verdict == "within the spread" for v in verdicts):
        verdicts += _compare_conclusions(scenario, stored, fresh, registry)
    return verdicts


def _compare(
    scenario: str,
    seed: int,
    label: str,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    stored_result: Result,
    here: dict[str, Any],
    stored: list[Result],
) -> RowVerdict:
    from fubench.plugins import get_registry

    verdict = RowVerdict(scenario, seed, label, False, "differs")
    if old is None:
        verdict.verdict, verdict.detail = "not stored", "the run made a row the results lack"
        return verdict
    if old["status"] != new["status"]:
        verdict.detail = f"status {old['status']} stored, {new['status']} now"
        return verdict
    metrics = get_registry().metrics
    compared = [m for m in old["metrics"] if not (m in metrics and metrics.get(m).timed)]
    if _same_bits(stored_result, here):
        changed = [m for m in compared if old["metrics"][m] != new["metrics"].get(m)]
        if changed:
            m = changed[0]
            verdict.detail = f"{m}: {old['metrics'][m]!r} stored, {new['metrics'].get(m)!r} now"
            return verdict
        verdict.ok, verdict.verdict = True, "identical"
        return verdict
    for m in compared:
        values = [
            r["methods"][label]["metrics"].get(m)
            for r in stored
            if label in r["methods"] and r["methods"][label]["metrics"].get(m) is not None
        ]
        value = new["metrics"].get(m)
        if not values or value is None:
            if (value is None) != (old["metrics"][m] is None):
                verdict.detail = f"{m}: {old['metrics'][m]!r} stored, {value!r} now"
                return verdict
            continue
        low, high = min(values), max(values)
        slack = 1e-9 * max(1.0, abs(low), abs(high))
        if not (low - slack <= value <= high + slack) or not math.isfinite(value):
            verdict.detail = f"{m}: {value:.6g} now, stored seeds span {low:.6g}..{high:.6g}"
            return verdict
    verdict.ok, verdict.verdict = True, "within the spread"
    verdict.detail = "computed elsewhere: not comparable bit for bit"
    return verdict


def _not_installed(scenario: str, seed: int, stored: Result, absent: list[str]) -> list[RowVerdict]:
    """The stored rows of methods this checkout has not installed (a community
    submission's, say): named as not checked, never passed over in silence."""
    out = []
    for label, row in stored["methods"].items():
        if row.get("method") in absent:
            package = (row.get("community") or {}).get("package")
            where = f"install {package} to check it" if package else "install its plugin"
            detail = f"method '{row['method']}' is not installed here; {where}"
            out.append(RowVerdict(scenario, seed, label, True, NOT_CHECKED, detail))
    return out


def _same_bits(stored: Result, here: dict[str, Any]) -> bool:
    prov = stored["provenance"]
    reproducible = str(prov.get("determinism", {}).get("bitwise_reproducible", "")).startswith(
        "yes"
    )
    return reproducible and all(prov.get(k) == here.get(k) for k in SAME_BITS)


def _compare_conclusions(
    scenario: str, stored: list[Result], fresh: dict[int, Result], registry: Registry
) -> list[RowVerdict]:
    """Whether the claims' verdicts and the rank intervals survive the new rows."""
    from fubench.report.leaderboard import build_sections

    replaced = []
    for result in stored:
        if result["seed"] not in fresh:
            replaced.append(result)
            continue
        new = dict(result, methods=dict(result["methods"]))
        new["methods"].update(fresh[result["seed"]]["methods"])
        replaced.append(new)
    (before,) = build_sections(stored, registry)
    (after,) = build_sections(replaced, registry)
    out = []
    for old, new in zip(before.claims, after.claims):
        if old.verdict != new.verdict:
            out.append(
                RowVerdict(
                    scenario,
                    -1,
                    f"claim {old.claim.id}",
                    False,
                    "differs",
                    f"verdict {old.verdict} stored, {new.verdict} with the new rows",
                )
            )
    for row, interval in before.intervals.items():
        if after.intervals.get(row) != interval:
            out.append(
                RowVerdict(
                    scenario,
                    -1,
                    f"rank of {row}",
                    False,
                    "differs",
                    f"95% interval {interval} stored, {after.intervals.get(row)} now",
                )
            )
    return out
