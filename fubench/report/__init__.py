"""Reports from stored result files: tables (``fubench table``, the table ``fubench
run`` prints), the leaderboard markdown, plots and attention maps. They share one result
reader, one row order, one table model and one notes block, and read everything about a
metric or method from its declaration."""

from fubench.report.reader import ResultsError, load_results
from fubench.report.table import ScenarioTable, aggregate, render
from fubench.report.text import render_report

__all__ = ["ResultsError", "load_results", "ScenarioTable", "aggregate", "render", "render_report"]
