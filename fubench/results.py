"""The result schema, provenance, and atomic JSON files.

One file per (scenario, seed): ``<out>/<scenario>/seed_<n>.json``::

    {"schema": 1,
     "scenario": {"name", "kind", "version", "file", "config": {...resolved...}},
     "config_hash": "...",            # what the rows were computed under
     "seed": 0,
     "dataset": {"name", "source", "fingerprint", "n_train", "n_test"},
     "setup": {...what the scenario kind built: e.g. poisoned sample count...},
     "warnings": ["PRECONDITION FAILED: ..."],
     "methods": {"original": ROW, "<method label>": ROW, ..., "retrain": ROW},
     "provenance": {"fubench_version", "git_hash", "date", "python", "torch",
                    "device", "hardware", "plugins": {name: version}}}

    ROW = {"method": name, "params": {...}, "sweep": {...}, "metrics": {name: float|null},
           "seconds": float, "status": "ok"|"failed"|"n/a", "error": str|null,
           "computed_at": {"git_hash", "date"}}   # the run that computed the row (a
                                                   # resumed file holds rows of several)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "n/a")
#: the row of the trained model before unlearning (θ^i)
ORIGINAL = "original"


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON as :func:`write_text_atomic` writes text."""
    text = json.dumps(data, indent=1, sort_keys=False, allow_nan=False)
    write_text_atomic(path, text + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename: a reader never sees a
    half-written file, and an interrupted run leaves the previous file intact. A symbolic
    link at ``path`` is replaced by the file, never followed: the file it points to stays
    as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes it private (0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's umask, without changing it where the system tells (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: a result file larger than this is not one (a row is a few kB; a file, a few 100 kB)
MAX_RESULT_BYTES = 64 * 2**20


def read_result(path: str | Path) -> dict[str, Any]:
    """A result file, read strictly; ValueError (one line) when it is not a regular
    file, not JSON, or not a complete, unedited result (see :func:`result_problem`)."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise ValueError(problem)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_RESULT_BYTES + 1)
        if len(raw) > MAX_RESULT_BYTES:
            raise ValueError(f"larger than {MAX_RESULT_BYTES // 2**20} MiB: not a result")
        data = json.loads(
            raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ValueError("not a result: nested too deep") from None
    problem = result_problem(data, path.name)
    if problem:
        raise ValueError(problem)
    return data


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a result file: a symbolic link, or not a regular file
    (a FIFO would block a reader forever, a device would feed it anything)."""
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return os_problem(exc)
    if stat.S_ISLNK(mode):
        return "a symbolic link, not a result file (results are plain files)"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, a device or a folder)"
    return None


def os_problem(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _no_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which JSON results never do (undefined is null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"holds the number {text[:20]}, too large for a float")
    return value


def result_problem(data: Any, file_name: str | None = None) -> str | None:
    """What makes ``data`` not a complete, unedited result (None: nothing)."""
    if not isinstance(data, dict):
        return f"not a result: a JSON {type(data).__name__}, not an object"
    if data.get("schema") != SCHEMA_VERSION:
        return (
            f"result schema {str(data.get('schema'))[:20]!r} is not "
            f"{SCHEMA_VERSION}; re-run the scenario"
        )
    problem = _shape_problem(data)
    if problem:
        return f"not a complete result: {problem}"
    match = re.fullmatch(r"(tuning_)?seed_(\d+)\.json", file_name or "")
    if match and int(match.group(2)) != data["seed"]:
        return f"holds seed {data['seed']}, but its name says seed {match.group(2)}"
    purpose = data.get("purpose", "evaluation")
    if purpose not in PURPOSES:
        return f"'purpose' is {_shown(purpose)}; expected one of {', '.join(PURPOSES)}"
    if match and bool(match.group(1)) != (purpose == "tuning"):
        return f"its name and its purpose ({purpose}) disagree"
    for label, row in data["methods"].items():
        problem = _row_problem(row) or _edited(data, row)
        if problem:
            return f"row '{_shown(label)}': {problem}"
    return None


#: the parts of a result every reader relies on, and their JSON types
_SHAPE = {
    "scenario": dict,
    "seed": int,
    "methods": dict,
    "dataset": dict,
    "provenance": dict,
    "config_hash": str,
}


def _shape_problem(data: dict[str, Any]) -> str | None:
    for key, kind in _SHAPE.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"'{key}' is missing or not {_TYPE_WORDS[kind]}"
    if not isinstance(data["scenario"].get("name"), str):
        return "'scenario' lacks its name"
    for label, row in data["methods"].items():
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("metrics"), dict)
            or row.get("status") not in STATUSES
        ):
            return f"the row '{_shown(label)}' is not a row (status, metrics)"
    return None


_TYPE_WORDS = {dict: "an object", int: "an integer", str: "a string"}


def _row_problem(row: dict[str, Any]) -> str | None:
    for metric, value in row["metrics"].items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return (
                f"metric '{_shown(metric)}' is {type(value).__name__} {_shown(value)}; "
                f"a metric is a number or null"
            )
    return None


def _edited(data: dict[str, Any], row: dict[str, Any]) -> str | None:
    if "digest" not in row:
        return "it carries no digest (written by hand, or by an older fubench): re-run it"
    if row["digest"] != row_digest(data["config_hash"], data["seed"], row):
        return (
            "its digest does not match its content: the row was edited after the run "
            "wrote it; re-run it"
        )
    return None


def row_digest(config_hash: str, seed: int, row: dict[str, Any]) -> str:
    """The digest a row carries: of what the run computed (configuration, code, seed,
    parameters, status and metrics), so an edit by hand shows. Not a signature: it
    tells an edited file from a written one, not a forger from an honest writer."""
    content = [config_hash, row.get("code"), seed, row.get("params"), row.get("status")]
    content.append(row.get("metrics"))
    return stable_hash(content)


def sealed(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with every row's digest (re)computed: what the runner does after
    every row, and what a tool that writes results must do."""
    for row in result["methods"].values():
        row["digest"] = row_digest(result["config_hash"], result["seed"], row)
    return result


def _shown(value: Any, limit: int = 40) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_results(paths: list[str | Path]) -> list[Path]:
    """Result files under the given files or folders, sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob("seed_*.json")))
            found.extend(sorted(p.rglob("tuning_seed_*.json")))
        elif p.exists():
            found.append(p)
    return sorted(set(found))


def row_order(rows: Any, reference: str, listed: list[str] | None = None) -> list[str]:
    """The reading order of row labels: original, the methods (in ``listed`` order,
    others after them in their own order), the reference last."""
    rows = list(rows)
    middle = [r for r in rows if r not in (ORIGINAL, reference)]
    if listed is not None:
        rank = {label: i for i, label in enumerate(listed)}
        middle.sort(key=lambda r: rank.get(r, len(rank)))
    return (
        ([ORIGINAL] if ORIGINAL in rows else [])
        + middle
        + ([reference] if reference in rows else [])
    )


def drop_rows(path: Path, labels: set[str]) -> None:
    """Remove the rows ``labels`` from a stored result file (atomically), so a rerun
    computes them again and keeps every other row; an unreadable file is removed. The
    file's recorded configuration stops listing them too."""
    if not path.exists():
        return
    try:
        result = read_result(path)
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return
    write_json_atomic(path, without_rows(result, labels))


def without_rows(result: dict[str, Any], labels: set[str]) -> dict[str, Any]:
    """``result`` (changed in place) without the rows ``labels``, which its recorded
    configuration stops listing too."""
    result["methods"] = {k: v for k, v in result["methods"].items() if k not in labels}
    config = result.get("scenario", {}).get("config") or {}
    if isinstance(config.get("methods"), dict):
        config["methods"] = {k: v for k, v in config["methods"].items() if k not in labels}
    return result


def unlisted_rows(result: dict[str, Any], listed: set[str]) -> list[str]:
    """The method rows of a stored result that ``listed`` (a scenario file's row labels,
    with the original's and the gold standard's) does not name: left by an earlier
    version of the file (a sweep changed, a method removed). A community method's rows
    (added by ``fubench submit``) are never among them."""
    return [
        label
        for label, row in result["methods"].items()
        if label not in listed and "community" not in row
    ]


#: what a result file is for: reported ("evaluation") or for choosing settings ("tuning")
PURPOSES = ("evaluation", "tuning")


def result_path(out: str | Path, scenario: str, seed: int, purpose: str = "evaluation") -> Path:
    """``<out>/<scenario>/seed_<n>.json`` (``tuning_seed_<n>.json`` for a tuning seed)."""
    prefix = "tuning_" if purpose == "tuning" else ""
    return Path(out) / scenario / f"{prefix}seed_{seed}.json"


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def clean_number(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null (undefined)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


#: seconds a git command may take while recording provenance
GIT_TIMEOUT = 5
#: what decides the numbers: a change here (not in generated results or docs) is "-dirty"
CODE_PATHS = ("fubench", "plugins", "scenarios", "pyproject.toml")


def computed_at(prov: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's provenance a row keeps: which code computed it, and when."""
    return {"git_hash": prov.get("git_hash"), "date": prov.get("date")}


def git_hash() -> str | None:
    """The commit of the fubench source tree, when it runs from a git checkout, with
    "-dirty" when the code that produces results differs from it (results, plots and
    docs being regenerated do not count)."""
    here = Path(__file__).resolve().parent
    try:  # git missing, hung (timeout) or refusing: no hash, never a traceback
        out = _git(["rev-parse", "HEAD"], here)
        if out.returncode != 0:
            return None
        top = _git(["rev-parse", "--show-toplevel"], here).stdout.strip()
        status = _git(
            ["status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
            Path(top) if top else here,
        )
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None
    if status.returncode != 0:
        return out.stdout.strip() + "-dirty"  # could not tell: do not claim it is clean
    return out.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT
    )


def hardware(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def utc_now() -> str:
    """The run's date, to the second: what a row's ``computed_at`` and the file's
    provenance record."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def instruction_set() -> str:
    """The processor's widest vector extension (what MKL's ``AUTO`` mode picks its code
    path by): CPU results are bit-identical only between machines that share it."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    widest = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "unknown")
    return f"{platform.machine()} {widest}"


def provenance(device: torch.device, plugins: dict[str, str]) -> dict[str, Any]:
    import numpy
    import torch

    from fubench import __version__

    return {
        "fubench_version": __version__,
        "git_hash": git_hash(),
        "date": utc_now(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "hardware": hardware(device),
        "instruction_set": instruction_set(),
        "plugins": plugins,
    }
