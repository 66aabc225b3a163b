"""A third-party method onto the leaderboard: ``fubench submit SUBMISSION.yaml``.

A contributor adds one small file under ``leaderboard/submissions/``::

    version: 1
    package: plugins/fubench-gradient-ascent   # a folder of this repository, or a
                                               # pinned requirement: name==1.2.0
    methods: [gradient_ascent]                 # the rows it adds
    scenarios: [backdoor_mnist, client_fmnist] # the committed scenarios it serves

and the pipeline, locally and in the leaderboard workflow:

1. installs the package into an environment of its own (a virtual environment layered
   on this one: it sees fubench and torch, and what it installs stays in it);
2. runs the conformance kit on it (``python -m fubench.testing <distribution>``);
3. runs its methods on every scenario it names, with the seeds the committed results
   hold, the scenario's gold standard beside them, into a private folder — and checks
   that the original and reference rows come out as the committed ones (same
   configuration, same numbers): its rows are measured against the same models;
4. only when every step succeeded, adds its rows to the committed result files, each
   marked ``"community": {"package", "version", "submission"}``.

A submission that fails the kit or a run is reported on one line and adds nothing. A
seed whose file already holds the submission's rows, from the same package version and
the same code (the harness of the file's reference rows, the method's modules as the
installed package has them now), is not run again: re-running the pipeline costs the
install and the kit only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fubench.code_fingerprint import HARNESS_MODULE
from fubench.config.yaml12 import read_yaml
from fubench.errors import ConfigError, FubenchError
from fubench.plugins import get_registry
from fubench.result_file import folder_lock
from fubench.results import (
    ORIGINAL,
    find_results,
    read_result,
    row_digest,
    row_order,
    write_json_atomic,
)

#: a pinned requirement: ``name==version``
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
KEYS = ("version", "package", "methods", "scenarios")


class SubmissionError(FubenchError):
    """A submission could not be added; nothing was written."""


@dataclass
class Submission:
    file: Path
    package: str  # a folder (resolved) or a pinned requirement
    methods: list[str]
    scenarios: list[str]


def read_submission(path: str | Path) -> Submission:
    """A submission file, checked: one :class:`fubench.ConfigError` line per mistake."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(
            str(path), "", "expected a mapping of version, package, methods, scenarios"
        )
    for key in data:
        if key not in KEYS:
            raise ConfigError(str(path), str(key), f"unknown key; allowed: {', '.join(KEYS)}")
    for key in KEYS:
        if key not in data:
            raise ConfigError(str(path), key, "missing")
    if data["version"] != 1:
        raise ConfigError(str(path), "version", f"expected 1, got {data['version']!r}")
    package = data["package"]
    if not isinstance(package, str) or not package.strip():
        raise ConfigError(str(path), "package", "expected a folder or name==version")
    folder = _folder(path, package)
    if folder is None and not PINNED.match(package):
        raise ConfigError(
            str(path),
            "package",
            f"{package!r} is neither a folder here nor a pinned requirement (name==version): "
            f"a leaderboard row must name the exact code that made it",
        )
    lists = {}
    for key in ("methods", "scenarios"):
        value = data[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(str(path), key, "expected a non-empty list of names")
        if len(set(value)) != len(value):
            raise ConfigError(str(path), key, "a name is listed twice")
        lists[key] = value
    return Submission(
        path, str(folder) if folder else package, lists["methods"], lists["scenarios"]
    )


def _folder(submission: Path, package: str) -> Path | None:
    """The package as a folder: relative to the working directory (the repository),
    else to the submission file."""
    for base in (Path.cwd(), submission.parent):
        candidate = (base / package).resolve()
        if (candidate / "pyproject.toml").is_file() or (candidate / "setup.py").is_file():
            return candidate
    return None


class Layer:
    """A virtual environment layered on this one: it sees every package installed here
    (a .pth file adds this environment's site-packages), but what pip installs into it
    stays there."""

    def __init__(self, root: Path):
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(root)],
            check=True,
            timeout=300,
            capture_output=True,
        )
        self.python = str(root / "bin" / "python")
        self.site = Path(
            subprocess.check_output(
                [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                text=True,
            ).strip()
        )
        base = sysconfig.get_paths()["purelib"]
        (self.site / "_fubench_base.pth").write_text(f"import site; site.addsitedir({base!r})\n")
        #: variables set (or, as "", removed) for the layer's processes
        self.env: dict[str, str] = {}
        self._fingerprints: dict[tuple[str, ...], dict[str, str]] = {}

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pip", "--python", self.python, *args],
            capture_output=True,
            text=True,
            timeout=1800,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in {**os.environ, **self.env}.items() if v != ""}
        return subprocess.run(
            [self.python, *args], capture_output=True, text=True, env=env, timeout=24 * 3600
        )

    def fingerprints(self, modules: tuple[str, ...]) -> dict[str, str]:
        """The code fingerprints of these modules as this layer imports them ({} when
        they cannot be computed); asked once per set of modules."""
        if modules not in self._fingerprints:
            done = self.run(
                "-c",
                "import json, sys; from fubench.code_fingerprint import module; "
                "print(json.dumps({m: module(m) for m in sys.argv[1:]}))",
                *modules,
            )
            try:
                found = json.loads(done.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                found = {}
            self._fingerprints[modules] = found if done.returncode == 0 else {}
        return self._fingerprints[modules]

    def distributions(self) -> dict[str, str]:
        """{distribution: version} of what was installed into the layer itself."""
        found = {}
        for info in self.site.glob("*.dist-info"):
            name, _, version = info.name[: -len(".dist-info")].partition("-")
            found[name.replace("_", "-")] = version
        return found


def submit(
    path: str | Path, results: str | Path, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run a submission and add its rows to ``results`` (the committed result folders);
    raise :class:`SubmissionError` (nothing written) when a step fails. Returns what was
    added: {"package", "version", "rows": {scenario: count}}."""
    submission = read_submission(path)
    results = Path(results)
    stored = {name: _stored(results, name) for name in submission.scenarios}
    with tempfile.TemporaryDirectory(prefix="fubench-submission-") as tmp:
        layer = Layer(Path(tmp) / "env")
        say(f"submission {submission.file}: installing {submission.package}")
        installed = layer.pip("install", "-q", "--no-build-isolation", submission.package)
        if installed.returncode != 0:
            raise SubmissionError(
                f"{submission.file}: pip could not install {submission.package}: "
                f"{_last_line(installed.stderr)}"
            )
        dist, version, entry_points = _the_distribution(layer, submission)
        # the built-ins and this package only, whatever else the environment holds
        layer.env = {
            "FUBENCH_DISABLE_PLUGIN_AUTOLOAD": "",
            "FUBENCH_PLUGINS": ",".join(entry_points),
        }
        say(f"submission {submission.file}: the conformance kit on {dist} {version}")
        kit = layer.run("-m", "fubench.testing", dist)
        if kit.returncode != 0:
            raise SubmissionError(
                f"{submission.file}: {dist} {version} fails the conformance kit: "
                f"{_last_line(kit.stdout + kit.stderr)}"
            )
        new, todo = {}, {}
        for name, files in stored.items():
            todo[name] = {
                seed: file
                for seed, (file, record) in files.items()
                if not _holds(layer, record, submission.methods, dist, version)
            }
            what = f"{', '.join(submission.methods)} on {name}"
            if not todo[name]:
                say(f"submission {submission.file}: {what}: already there, from this code")
                continue
            kept = len(files) - len(todo[name])
            say(f"submission {submission.file}: {what}" + (f" ({kept} seeds kept)" if kept else ""))
            new[name] = _run_scenario(layer, submission, name, todo[name], Path(tmp) / "out")
    marker = {"package": dist, "version": version, "submission": _shown_path(submission.file)}
    added = {
        name: _add_rows(todo[name], new[name], submission.methods, marker) if name in new else 0
        for name in stored
    }
    return {"package": dist, "version": version, "rows": added}


def _holds(
    layer: Layer, record: dict[str, Any], methods: list[str], dist: str, version: str
) -> bool:
    """Whether a committed result (``record``, as read) already holds a row of every
    submitted method from ``dist`` ``version``, computed by the harness of its reference
    rows and by the method modules the layer has installed now (a local package edited
    without a new version is run again)."""
    reference = record["methods"].get(record.get("reference") or get_registry().reference_name)
    harness = ((reference or {}).get("code") or {}).get("harness")
    rows = [row for row in record["methods"].values() if row.get("method") in methods]
    held = {
        row["method"]
        for row in rows
        if row.get("community", {}).get("package") == dist
        and row["community"].get("version") == version
        and (row.get("code") or {}).get("harness") == harness
        and _same_modules(layer, (row.get("code") or {}).get("modules") or {})
    }
    return harness is not None and held == set(methods)


def _same_modules(layer: Layer, modules: dict[str, str]) -> bool:
    """Whether the layer's code of these plugin modules has these fingerprints now."""
    named = tuple(sorted(m for m in modules if not m.startswith(HARNESS_MODULE)))
    now = layer.fingerprints(named)
    return all(now.get(m) == modules[m] for m in named)


def _stored(results: Path, scenario: str) -> dict[int, tuple[Path, dict[str, Any]]]:
    """{seed: (file, its result as read)} of a scenario's committed results."""
    files = find_results([results / scenario])
    if not files:
        raise SubmissionError(f"no committed results of scenario '{scenario}' under {results}")
    records = [(f, read_result(f)) for f in files]
    return {record["seed"]: (f, record) for f, record in records}


def _the_distribution(layer: Layer, submission: Submission) -> tuple[str, str, list[str]]:
    """The distribution the submission installed (the one with a fubench entry point):
    its name, version and entry-point names."""
    for name, version in sorted(layer.distributions().items()):
        done = layer.run(
            "-c",
            "import importlib.metadata as md, sys; print(','.join(e.name for e in "
            "md.distribution(sys.argv[1]).entry_points if e.group == 'fubench'))",
            name,
        )
        if done.returncode == 0 and done.stdout.strip():
            return name, version, done.stdout.strip().split(",")
    raise SubmissionError(
        f"{submission.file}: {submission.package} installed no distribution with a "
        f"'fubench' entry point"
    )


def _run_scenario(
    layer: Layer, submission: Submission, scenario: str, files: dict[int, Path], out: Path
) -> dict[int, dict[str, Any]]:
    first = read_result(next(iter(files.values())))
    scenario_file = first["scenario"].get("file")
    if not scenario_file or not Path(scenario_file).is_file():
        raise SubmissionError(
            f"{submission.file}: the results of '{scenario}' name the scenario file "
            f"{scenario_file!r}, which is not here; run from the repository"
        )
    reference = first.get("reference") or get_registry().reference_name
    seeds = ",".join(map(str, sorted(files)))
    methods = ",".join([reference, *submission.methods])
    done = layer.run(
        "-m", "fubench", "run", scenario_file, "--methods", methods, "--seeds", seeds,
        "--out", str(out), "-q",
    )  # fmt: skip
    if done.returncode not in (0, 1):  # 1: a row failed, which is a result
        raise SubmissionError(
            f"{submission.file}: the run on {scenario} failed: "
            f"{_last_line(done.stderr or done.stdout)}"
        )
    fresh = {}
    for seed, file in files.items():
        mine = read_result(out / first["scenario"]["name"] / f"seed_{seed}.json")
        theirs = read_result(file)
        _same_references(submission, scenario, seed, mine, theirs, reference)
        fresh[seed] = mine
    return fresh


def _same_references(
    submission: Submission,
    scenario: str,
    seed: int,
    mine: dict[str, Any],
    theirs: dict[str, Any],
    reference: str,
) -> None:
    """The submission's rows stand beside the committed ones only if they were measured
    against the same models: the same configuration and the same reference rows."""
    if mine["config_hash"] != theirs["config_hash"]:
        raise SubmissionError(
            f"{submission.file}: {scenario} seed {seed} ran under another configuration "
            f"than the committed results (config hash {mine['config_hash']} vs "
            f"{theirs['config_hash']}); regenerate the leaderboard first"
        )
    for label in (ORIGINAL, reference):
        a, b = mine["methods"].get(label, {}), theirs["methods"].get(label, {})
        if not _same_code(a, b) or _measured(a) != _measured(b):
            raise SubmissionError(
                f"{submission.file}: {scenario} seed {seed}: the {label} row differs from the "
                f"committed one (other code or other numbers); regenerate the leaderboard "
                f"first"
            )


def _same_code(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two reference rows come from the same code: the same harness, and the
    same fingerprint for every module both name. A module only one names comes from
    what else ran or was measured beside it (a method that needs the round history,
    which changes no weight; a reset method's metric), not from the model: the
    committed run held every method, a submission's holds the reference alone."""
    code_a, code_b = a.get("code") or {}, b.get("code") or {}
    if not code_a or code_a.get("harness") != code_b.get("harness"):
        return False
    modules_a, modules_b = code_a.get("modules") or {}, code_b.get("modules") or {}
    return all(modules_a[m] == modules_b[m] for m in modules_a.keys() & modules_b.keys())


def _measured(row: dict[str, Any]) -> dict[str, Any]:
    """What a row measured of its model: its utility and forgetting metrics (costs and
    clocks depend on what else ran, and where)."""
    metrics = get_registry().metrics
    return {
        k: v
        for k, v in row.get("metrics", {}).items()
        if k in metrics and metrics.get(k).role in ("utility", "forgetting")
    }


def _add_rows(
    files: dict[int, Path],
    fresh: dict[int, dict[str, Any]],
    methods: list[str],
    marker: dict[str, str],
) -> int:
    """Put the submission's rows into the committed files (atomically, under the
    folder's lock); return how many rows were added."""
    added = 0
    for seed, file in files.items():
        with folder_lock(file.parent):
            record = read_result(file)
            new = {
                label: row
                for label, row in fresh[seed]["methods"].items()
                if row.get("method") in methods
            }
            for label, row in new.items():
                row = dict(row, community=marker)
                row["digest"] = row_digest(record["config_hash"], record["seed"], row)
                record["methods"][label] = row
                added += 1
            reference = record.get("reference") or get_registry().reference_name
            listed = [label for label in record["methods"] if label not in new] + list(new)
            order = row_order(record["methods"], reference, listed)
            record["methods"] = {label: record["methods"][label] for label in order}
            config = record["scenario"].setdefault("config", {})
            config.setdefault("methods", {}).update(
                {label: row.get("params", {}) for label, row in new.items()}
            )
            write_json_atomic(file, record)
    return added


def _shown_path(path: Path) -> str:
    """The submission file as the repository names it (never a machine path)."""
    try:
        relative = Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
    except ValueError:  # pragma: no cover - another drive
        return path.name
    return path.name if relative.startswith("..") else relative


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
