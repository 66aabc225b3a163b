"""``fubench list`` and ``show`` from the plugin manifest: the same output as from the
imported plugins, without importing them (or torch) while the manifest is current, and
rebuilt, silently, when anything it depends on changed or it cannot be read."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys

import pytest

from fubench import plugins
from fubench.cli.manifest import fingerprint, manifest_path, read_manifest
from fubench.cli.parser import LIST_WHAT
from tests.conftest import run_cli
from tests.test_plugins import GOOD_MODULE, fake_distribution  # noqa: F401
from tests.test_ux import subprocess_env

#: every way to call list (in a folder without scenario files)
LISTS = [[], ["--full"], *([w] for w in LIST_WHAT), *([w, "--full"] for w in LIST_WHAT)]


@pytest.fixture(autouse=True)
def _no_scenario_folder(tmp_path, monkeypatch):
    """``list`` with a scenarios/ folder here checks its files (which imports plugins)."""
    monkeypatch.chdir(tmp_path)


def output(capsys, *args: str) -> str:
    code = run_cli(*args)
    captured = capsys.readouterr()
    assert captured.err == ""
    return f"{captured.out}rc={code}"


def imports_refused(monkeypatch) -> None:
    """From here on, loading the plugins fails the test."""

    def refuse():
        raise AssertionError("the plugins were imported, the manifest was not used")

    monkeypatch.setattr(plugins, "get_registry", refuse)


def test_the_manifest_prints_byte_for_byte_what_the_plugins_print(capsys, monkeypatch):
    assert not manifest_path().exists()
    output(capsys, "list")  # no manifest: the plugins are imported, the manifest written
    assert read_manifest(fingerprint()) is not None
    registry = plugins.get_registry()
    names = sorted({n for category in registry.categories for n in category})
    calls = [["list", *args] for args in LISTS] + [["show", name] for name in names]
    imported = {tuple(call): output(capsys, *call) for call in calls}
    plugins.reset_registry()
    imports_refused(monkeypatch)
    for call in calls:
        assert output(capsys, *call) == imported[tuple(call)], call


def test_show_and_list_from_the_manifest_say_what_the_plugins_say(capsys, monkeypatch):
    output(capsys, "list")
    plugins.reset_registry()
    imports_refused(monkeypatch)
    out = output(capsys, "show", "finetune")
    assert out.startswith("method 'finetune' — plugin finetune (fubench ")
    assert "\n  rounds: default 5, ≥ 1 — " in out
    assert "\ndeclarations:\n  participation = " in out
    assert re.search(r"^  finetune +.*  \[finetune\]$", output(capsys, "list", "methods"), re.M)


@pytest.mark.training  # starts a process
def test_a_warm_list_imports_neither_plugins_nor_torch(tmp_path, monkeypatch):
    env = subprocess_env(tmp_path)
    monkeypatch.setenv("FUBENCH_CACHE", env["FUBENCH_CACHE"])  # the same manifest, warmed here
    assert run_cli("list") == 0
    check = (
        "import sys; from fubench.cli import main; "
        "codes = [main(a) for a in (['list'], ['list', 'kinds', '--full'], ['show', 'retrain'])]; "
        "heavy = [m for m in ('torch', 'fubench_builtins.retrain') if m in sys.modules]; "
        "assert not heavy, heavy; sys.exit(max(codes))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "retrain" in done.stdout


def test_editing_a_plugin_module_rebuilds_the_manifest(fake_distribution, tmp_path, capsys):  # noqa: F811
    fake_distribution("fu-amnesia", {"fu_amnesia": GOOD_MODULE}, {"amnesia": "fu_amnesia"})
    assert "Returns the model unchanged" in output(capsys, "list", "methods")
    warm = fingerprint()
    module = tmp_path / "fu_amnesia.py"
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched
    assert fingerprint() != warm
    module.write_text(GOOD_MODULE.replace("Returns the model unchanged", "Forgets nothing"))
    plugins.reset_registry()
    del sys.modules["fu_amnesia"]
    out = output(capsys, "list", "methods")
    assert "Forgets nothing" in out and "Returns the model unchanged" not in out
    assert read_manifest(fingerprint()) is not None  # written again


def test_installing_or_removing_a_plugin_rebuilds_the_manifest(fake_distribution, tmp_path, capsys):  # noqa: F811
    assert "amnesia" not in output(capsys, "list", "methods")
    fake_distribution("fu-amnesia", {"fu_amnesia": GOOD_MODULE}, {"amnesia": "fu_amnesia"})
    plugins.reset_registry()
    assert "  amnesia " in output(capsys, "list", "methods")
    for info in tmp_path.glob("fu-amnesia-*.dist-info"):  # uninstalled
        for file in info.iterdir():
            file.unlink()
        info.rmdir()
    importlib.invalidate_caches()
    plugins.reset_registry()
    assert "amnesia" not in output(capsys, "list", "methods")


def test_the_plugin_switches_are_part_of_the_key(fake_distribution, capsys, monkeypatch):  # noqa: F811
    fake_distribution("fu-amnesia", {"fu_amnesia": GOOD_MODULE}, {"amnesia": "fu_amnesia"})
    assert "  amnesia " in output(capsys, "list", "methods")
    for switch, value in (("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", "1"), ("FUBENCH_PLUGINS", "x")):
        plugins.reset_registry()
        monkeypatch.setenv(switch, value)
        assert "amnesia" not in output(capsys, "list", "methods"), switch
        monkeypatch.delenv(switch)


@pytest.mark.parametrize(
    "broken",
    [
        "{not json",
        "",
        json.dumps([1, 2]),
        "FINGERPRINT",  # the right key, a catalog of the wrong shape
    ],
)
def test_a_corrupt_manifest_is_rebuilt_silently(broken, capsys):
    expected = output(capsys, "list", "--full")
    plugins.reset_registry()
    if broken == "FINGERPRINT":
        catalog = {"categories": {"method": [{"name": "x"}]}, "always_metrics": []}
        broken = json.dumps({"format": 1, "fingerprint": fingerprint(), "catalog": catalog})
    manifest_path().write_text(broken)
    assert output(capsys, "list", "--full") == expected
    assert read_manifest(fingerprint()) is not None


def test_a_broken_plugin_is_reported_every_time_and_never_cached(fake_distribution, capsys):  # noqa: F811
    fake_distribution("fu-typo", {"fu_typo": "import not_a_module_at_all\n"}, {"typo": "fu_typo"})
    for _ in range(2):
        plugins.reset_registry()
        assert run_cli("list", "methods") == 0
        assert "plugin 'typo' (fu-typo 1.2.3) failed to import" in capsys.readouterr().err
        assert not manifest_path().exists()


def test_a_loaded_registry_is_used_and_not_cached(capsys, test_registry):
    assert "  tiny_images " in output(capsys, "list", "datasets")  # a test plugin's data set
    assert not manifest_path().exists()
