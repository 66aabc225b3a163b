"""What ``fubench list`` and ``fubench show`` print about a component, as plain data.

A :class:`Card` holds a component's declarations already turned into what the commands
print (the description, each parameter's default and bounds as text, the declared
attributes as ``repr``), so that it can be stored as JSON in the plugin manifest
(:mod:`fubench.cli.manifest`) and printed later without importing the plugin, or torch.
Both ways print through the same functions, from the same cards: the output is the same
byte for byte."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any

#: declarations ``show`` prints, per component base class name
DECLARATIONS = {
    "Unlearner": (
        "participation",
        "needs_history",
        "unsupported_kinds",
        "reads",
        "reports",
        "reference",
    ),
    "Metric": (
        "role",
        "higher_is_better",
        "ideal",
        "normalises",
        "normalisation",
        "percent",
        "count",
    ),
    "ScenarioKind": ("showcase", "example_params", "forgotten_behaviour"),
    "DatasetLoader": ("modality", "n_classes"),
}


@dataclass
class ParamCard:
    """One declared parameter, as ``list --full`` and ``show`` print it."""

    name: str
    required: bool
    default: str  # repr of the default ("" when required)
    choices: list[str] | None  # repr of each choice
    min: float | None
    max: float | None
    min_exclusive: bool
    nullable: bool
    help: str


@dataclass
class Card:
    """One registered component: its category, owner and declarations."""

    what: str  # the category ("method", "scenario kind", ...)
    name: str
    owner: str  # the plugin that registered it
    version: str  # "<distribution> <version>" of that plugin
    description: str
    params: list[ParamCard]
    declared: list[tuple[str, str]]  # (attribute, repr of its value)
    #: a scenario kind's declared default metrics (empty: ``build`` decides them)
    default_metrics: list[str] = field(default_factory=list)
    #: a kind that declares none: the metrics ``build`` returned on the conformance
    #: kit's tiny data when the card was made, and how they were found
    built_metrics: list[str] = field(default_factory=list)
    built_how: str = ""


@dataclass
class Catalog:
    """Every component's card, by category in the registry's order, and the metrics
    every row gets (``Metric.always``)."""

    categories: dict[str, list[Card]]
    always_metrics: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "categories": {
                what: [asdict(card) for card in cards] for what, cards in self.categories.items()
            },
            "always_metrics": self.always_metrics,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Catalog:
        """The catalog stored by :meth:`to_json`; raises (KeyError, TypeError, ...) on
        anything else."""
        categories = {
            what: [_card(entry) for entry in cards] for what, cards in data["categories"].items()
        }
        return cls(categories, [str(m) for m in data["always_metrics"]])


def _card(entry: dict[str, Any]) -> Card:
    params = [ParamCard(**p) for p in entry["params"]]
    declared = [(str(attr), str(value)) for attr, value in entry["declared"]]
    return Card(**{**entry, "params": params, "declared": declared})


def catalog_of(registry: Any) -> Catalog:
    """The cards of every component a loaded registry holds."""
    categories = {
        category.what: [
            card_of(cls, category.what, category.owner(name), registry.version(category, name))
            for name, cls in category.items()
        ]
        for category in registry.categories
    }
    for card in categories.get(registry.kinds.what, []):
        if not card.default_metrics:  # found once, here, where the plugins are loaded
            card.built_metrics, card.built_how = built_metrics(
                registry.kinds.get(card.name), registry
            )
    return Catalog(categories, registry.row_metrics([], []))


def built_metrics(cls: type, registry: Any) -> tuple[list[str], str]:
    """The default metrics ``build`` returns on the kit's tiny data (a kind that does
    not declare them), and how they were found."""
    import contextlib
    import io

    from fubench.errors import one_line
    from fubench.testing.world import TinyWorld

    world = TinyWorld(registry)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            instance, modality, refusals = world.kind_instance(cls.name)
            if instance is None:
                return [], f" (not declared; the kind refuses the kit's data: {refusals[0]})"
            metrics = list(world.job(cls.name, instance, modality).setup.default_metrics)
    except Exception as exc:  # a kind that cannot build: say so, show the rest
        return [], f" (not declared, and build() failed on the kit's data: {one_line(exc)})"
    return metrics, " (not declared by the kind: as build() returns them on the kit's data)"


def card_of(cls: type, what: str, owner: str, version: str) -> Card:
    from fubench.params import as_param

    declared = [
        (attr, repr(getattr(cls, attr)))
        for base in type.mro(cls)
        for attr in DECLARATIONS.get(base.__name__, ())
    ]
    return Card(
        what=what,
        name=cls.name,
        owner=owner,
        version=version,
        description=description(cls),
        params=[param_card(name, as_param(spec)) for name, spec in cls.parameters.items()],
        declared=declared,
        default_metrics=list(getattr(cls, "default_metrics", ())),
    )


def param_card(name: str, spec: Any) -> ParamCard:
    return ParamCard(
        name=name,
        required=spec.required,
        default="" if spec.required else repr(spec.default),
        choices=None if spec.choices is None else [repr(c) for c in spec.choices],
        min=spec.min,
        max=spec.max,
        min_exclusive=spec.min_exclusive,
        nullable=spec.nullable,
        help=spec.help,
    )


def description(cls: type) -> str:
    """The component's full description: its docstring (or ``description``)."""
    own = cls.__dict__.get("__doc__") or getattr(cls, "description", "") or ""
    return inspect.cleandoc(own)
