"""Every hook fubench calls. A plugin is a module (or object) with functions decorated by
``fubench.hookimpl`` whose names and argument names match these specifications.

Registration hooks return lists of component classes; the plugin manager collects
them, sorts them by name, and refuses two plugins that claim the same name.
Lifecycle hooks are called while a run proceeds; their return values are ignored.

A minimal plugin module, registered through the entry-point group ``fubench``::

    # my_method.py
    import fubench

    class GradientAscent(fubench.Unlearner):
        name = "gradient_ascent"
        parameters = {"lr": 0.01}
        def unlearn(self, ctx): ...

    @fubench.hookimpl
    def fubench_unlearners():
        return [GradientAscent]

    # pyproject.toml
    # [project.entry-points.fubench]
    # my_method = "my_method"
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("fubench")


# ------------------------------------------------------------------- registration


@hookspec
def fubench_unlearners() -> list[type]:
    """Return :class:`fubench.Unlearner` subclasses.

    Example::

        @fubench.hookimpl
        def fubench_unlearners():
            return [MyMethod]
    """


@hookspec
def fubench_partitioners() -> list[type]:
    """Return :class:`fubench.Partitioner` subclasses (how training data is split
    between clients).

    Example::

        @fubench.hookimpl
        def fubench_partitioners():
            return [ShardPartitioner]
    """


@hookspec
def fubench_scenario_kinds() -> list[type]:
    """Return :class:`fubench.ScenarioKind` subclasses (the YAML ``scenario.kind``).

    Example::

        @fubench.hookimpl
        def fubench_scenario_kinds():
            return [BackdoorScenario]
    """


@hookspec
def fubench_metrics() -> list[type]:
    """Return :class:`fubench.Metric` subclasses.

    Example::

        @fubench.hookimpl
        def fubench_metrics():
            return [TestAccuracy, NormalisedTestAccuracy]
    """


@hookspec
def fubench_datasets() -> list[type]:
    """Return :class:`fubench.DatasetLoader` subclasses (the YAML ``dataset.name``).

    Example::

        @fubench.hookimpl
        def fubench_datasets():
            return [MNIST]
    """


@hookspec
def fubench_models() -> list[type]:
    """Return :class:`fubench.ModelFactory` subclasses (the YAML ``model.name``).

    Example::

        @fubench.hookimpl
        def fubench_models():
            return [MnistCNN]
    """


# ---------------------------------------------------------------------- lifecycle


@hookspec
def fubench_run_start(scenario: Any, seeds: list[int], methods: list[str]) -> None:
    """Called once before a scenario runs. ``scenario`` is the validated
    :class:`fubench.config.ScenarioConfig`.

    Example::

        @fubench.hookimpl
        def fubench_run_start(scenario, seeds, methods):
            wandb.init(project="fu", config=scenario.resolved)
    """


@hookspec
def fubench_method_result(scenario: Any, seed: int, method: str, result: dict[str, Any]) -> None:
    """Called after each row (original, every method, retrain) is measured, with the
    row as it is written to the result JSON (``metrics``, ``params``, ``status``...).

    Example::

        @fubench.hookimpl
        def fubench_method_result(scenario, seed, method, result):
            print(scenario.name, seed, method, result["metrics"].get("test_acc"))
    """


@hookspec
def fubench_run_end(scenario: Any, result_paths: list[str]) -> None:
    """Called once after a scenario ran, with the result JSON files written.

    Example::

        @fubench.hookimpl
        def fubench_run_end(scenario, result_paths):
            upload(result_paths)
    """
