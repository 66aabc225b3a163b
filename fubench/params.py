"""Declared parameters and the component base class.

Every component (method, partitioner, scenario kind, metric, data set, model) is a small
class with a ``name`` and declared ``parameters``: a mapping from parameter name to its
default or to a :class:`Param`. The harness validates YAML values against these
declarations, so a component's ``__init__`` never sees a value of the wrong type, and it
checks the declarations themselves when a plugin is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

_MISSING = object()


@dataclass
class ConfigContext:
    """What a component's ``validate_config`` may check parameters against. ``swept``
    names the component's parameters the file sweeps: a setting pointless at one sweep
    point (mc_samples beside curvature: [ggn_exact, ggn_mc]) may count at another."""

    n_classes: int | None
    clients: int
    modality: str
    dataset: str
    swept: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Param:
    """A declared parameter: default, type and bounds.

    Example::

        parameters = {"gamma": Param(0.5, float, min=0.0, max=1.0, help="share of TIS to reset")}

    A ``float`` parameter accepts integers too (YAML users write ``lr: 1``); the
    component receives a float.
    """

    default: Any = _MISSING
    type: type | tuple[type, ...] | None = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    nullable: bool = False

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def value_type(self) -> type | tuple[type, ...] | None:
        """The accepted Python type(s); ``float`` means "a number" (int or float)."""
        declared = self.type
        if declared is None:
            if self.default is _MISSING or self.default is None:
                return None
            declared = bool if isinstance(self.default, bool) else type(self.default)
        if declared is float:
            return (int, float)
        return declared

    def declaration_problem(self) -> str | None:
        """Why this declaration is inconsistent (its default does not satisfy it)."""
        if self.required or self.default is None:
            if self.default is None and not self.nullable and self.type is not None:
                return "default None but nullable=False; declare nullable=True"
            return None
        expected = self.value_type()
        value = self.default
        if expected is not None and not _is_instance(value, expected):
            return (
                f"default {value!r} is not {_type_words(expected)}; "
                f"declare Param({_example(expected)}, ...)"
            )
        if self.choices is not None and value not in self.choices:
            return f"default {value!r} is not among choices {list(self.choices)}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low = self.min is not None and (
                value <= self.min if self.min_exclusive else value < self.min
            )
            if low or (self.max is not None and value > self.max):
                return f"default {value!r} is outside [{self.min}, {self.max}]"
        return None


def _is_instance(value: Any, expected: type | tuple[type, ...]) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def _type_words(expected: Any) -> str:
    if isinstance(expected, tuple):
        if set(expected) == {int, float}:
            return "a number"
        return " or ".join(_type_words(t) for t in expected)
    return _WORDS.get(expected, getattr(expected, "__name__", str(expected)))


def _example(expected: Any) -> str:
    if isinstance(expected, tuple):
        expected = float if set(expected) == {int, float} else expected[0]
    return {int: "3", float: "0.5", bool: "True", str: '"text"', list: "[...]"}.get(expected, "...")


def as_param(spec: Any) -> Param:
    """A bare default in ``parameters`` means ``Param(default)``."""
    return spec if isinstance(spec, Param) else Param(spec, nullable=spec is None)


def defaults(cls: type) -> dict[str, Any]:
    """The declared defaults of a component class (required parameters left out)."""
    return {k: as_param(v).default for k, v in cls.parameters.items() if not as_param(v).required}


class Component:
    """Base of every pluggable component.

    Subclasses set ``name`` (unique among their kind) and ``parameters``; the harness
    calls ``Component(**validated_params)``. ``self.params`` keeps the resolved values,
    which also read as attributes (``self.gamma``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}

    @classmethod
    def validate_config(
        cls, params: dict[str, Any], context: ConfigContext
    ) -> Iterable[tuple[str, str]]:
        """(key, message) for every resolved parameter value that cannot work with the
        scenario (its data set, client count, other values) or that the other values
        make pointless, checked before anything loads; a method is checked at each
        sweep point (``context.swept`` names the swept parameters). Used for data sets,
        models, partitioners, scenario kinds and methods. Example::

            if params["client"] >= context.clients:
                yield "client", f"expected a client index in 0..{context.clients - 1}"
        """
        return ()

    def __init__(self, **params: Any):
        self.params = defaults(type(self))
        self.params.update(params)

    def __getattr__(self, key: str) -> Any:
        params = self.__dict__.get("params", {})
        if key in params:
            return params[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"
