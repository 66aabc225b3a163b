"""What ``fubench run`` prints is short and fits a terminal: one line for the rows it
reused (``-v`` names them), the table in parts of at most 120 characters (``--wide`` and
``--table FILE`` keep it whole), claims on a partial run only where its rows test them,
and numbers at the precision the table uses."""

from __future__ import annotations

import re

from fubench.report.fit import TERMINAL_WIDTH, table_parts, wrap
from tests.conftest import run_cli
from tests.test_ux import kit, tiny_yaml  # noqa: F401  (kit: a fixture)

CLAIMS = """
claims:
  - {id: ft_drop, source: "a paper", metric: asr, row: finetune, below: original}
  - {id: rr_drop, source: "a paper", metric: asr, row: random_reset, below: original}
"""


def test_a_warm_run_says_in_one_line_how_many_rows_it_reused(test_registry, tmp_path, capsys):
    methods = "{retrain: {}, finetune: {rounds: 1}, random_reset: {gamma: [0.1, 0.5]}}"
    file = tiny_yaml(tmp_path, rounds=1, seeds="[0, 1]", methods=methods)
    out = tmp_path / "out"
    assert run_cli("run", str(file), "--out", str(out)) == 0
    capsys.readouterr()
    assert run_cli("run", str(file), "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert f"  6 rows reused from {out / 'tiny'}/ (" in err and "-v lists them)" in err
    assert "reused from seed_" not in err and ": reused" not in err
    assert err.count("original model from cache") == 2, "said once per seed"
    assert run_cli("run", str(file), "--out", str(out), "-v") == 0
    err = capsys.readouterr().err
    named = re.findall(r"^  seed (\d) (\S+): reused from .*seed_\d\.json$", err, re.M)
    assert len(named) == 6 and ("1", "random_reset[gamma=0.5]") in named


def test_the_printed_table_fits_120_columns_and_the_saved_one_is_whole(
    test_registry, tmp_path, capsys
):
    methods = "{retrain: {}, finetune: {rounds: 1}, random_reset: {gamma: [0.1, 0.5]}}"
    file = tiny_yaml(tmp_path, rounds=1, methods=methods)
    saved = tmp_path / "table.md"
    assert run_cli("run", str(file), "--out", str(tmp_path / "o"), "--table", str(saved)) == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= TERMINAL_WIDTH
    assert printed.count("| method ") >= 2, "the table in parts, each naming the rows"
    assert printed.count("| finetune ") == printed.count("| method ")
    whole = saved.read_text()
    [header] = [line for line in whole.splitlines() if line.startswith("| method ")]
    assert len(header) > TERMINAL_WIDTH and "work_ratio" in header, "one wide table saved"
    assert run_cli("table", str(tmp_path / "o")) == 0
    assert capsys.readouterr().out.count("| method ") == 1, "`fubench table` unchanged"
    assert run_cli("run", str(file), "--out", str(tmp_path / "o"), "--wide") == 0
    assert capsys.readouterr().out.count("| method ") == 1


def test_a_partial_run_shows_only_the_claims_it_can_test(test_registry, tmp_path, capsys):
    methods = "{retrain: {}, finetune: {rounds: 1}, random_reset: {gamma: 0.5}}"
    file = tiny_yaml(tmp_path, rounds=1, methods=methods)
    file.write_text(file.read_text() + CLAIMS)
    out = str(tmp_path / "o")
    assert run_cli("run", str(file), "--out", out, "--methods", "retrain,finetune") == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "ft_drop" in printed and "rr_drop" not in printed
    assert "not testable" not in printed
    assert "1 of the scenario's 2 claims name rows or metrics this run did not compute" in printed
    assert run_cli("table", out) == 0
    table = capsys.readouterr().out
    assert "rr_drop" in table and "not testable" in table, "`fubench table` shows them all"


def test_table_parts_repeat_the_row_names_and_each_fits():
    headers = ["method"] + [f"metric_{i} ↑" for i in range(12)]
    body = [[name] + [f"{i}.123 ± 0.456" for i in range(12)] for name in ("a", "b")]
    parts = table_parts(headers, body, 80)
    assert len(parts) > 1
    for part in parts:
        lines = part.splitlines()
        assert max(map(len, lines)) <= 80 and lines[0].startswith("| method")
        assert [line.split("|")[1].strip() for line in lines[2:]] == ["a", "b"]
    shown = [h for part in parts for h in re.findall(r"metric_\d+", part.splitlines()[0])]
    assert shown == [f"metric_{i}" for i in range(12)], "every column once, in order"
    assert table_parts(headers, body, None) == table_parts(headers, body, 10_000)


def test_prose_wraps_but_tables_do_not():
    text = "- **x**: " + "word " * 40 + "\n| a | " + "b " * 80 + "|"
    lines = wrap(text, 60).splitlines()
    assert all(len(line) <= 60 for line in lines[:-1]) and lines[-1].startswith("| a |")
    assert lines[1].startswith("  word"), "a list item continues indented"


def test_fedrecovery_says_its_numbers_at_four_digits(kit, capsys):  # noqa: F811
    from fubench_builtins.fedrecovery import FedRecovery

    ctx = kit.context(kit.stage("client"), FedRecovery)
    capsys.readouterr()
    FedRecovery().unlearn(ctx)
    [line] = [li for li in capsys.readouterr().err.splitlines() if "fedrecovery:" in li]
    assert "sensitivity bound d = " in line and "implied ε = " in line
    digits = [len(re.sub(r"\D", "", n.lstrip("0."))) for n in re.findall(r"\d[\d.]*", line)]
    assert max(digits) <= 4, line
