"""The kit: which components to check (:class:`Case`), and the checks run on the tiny
world (:mod:`fubench.testing.world`), one :class:`ConformanceError` per failing
component. One kit is shared per registry (:func:`shared_kit`), so the tiny scenarios
are trained once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from fubench.api import CATEGORIES
from fubench.registry import Registry
from fubench.testing.checks import CHECKS, ORDER
from fubench.testing.world import ConformanceError, TinyWorld


class Kit(TinyWorld):
    """Runs the conformance checks against one registry, on one shared tiny world."""

    # -- selection
    def owner(self, what: str, name: str) -> str:
        return self.registry.category(what).owner(name) or "?"

    def cases(
        self, plugin: str | Iterable[str] | None = None, builtin_only: bool = False
    ) -> list[Case]:
        """One case per registered component (datasets excepted), optionally only those
        of the given plugins (entry-point or distribution names) or of the built-ins."""
        wanted = {plugin} if isinstance(plugin, str) else set(plugin or ())
        loaded = [p for p in self.registry.plugins if p.problem is None]
        known = {p.name for p in loaded} | {p.distribution for p in loaded}
        failed = [
            p
            for p in self.registry.plugins
            if p.problem and (p.name in wanted or p.distribution in wanted)
        ]
        if failed:
            raise ConformanceError(
                "; ".join(f"{p.described} {p.failure_text}; {p.remedy}" for p in failed)
            )
        infos = [
            p
            for p in self.registry.plugins
            if p.problem is None
            and (not wanted or p.name in wanted or p.distribution in wanted)
            and (p.builtin or not builtin_only)
        ]
        if wanted and not infos:
            raise ConformanceError(
                f"no loaded plugin is called "
                f"{', '.join(repr(w) for w in sorted(wanted))}; loaded: "
                f"{', '.join(sorted(known))}"
            )
        out = [
            Case(self, what, name, info.name)
            for info in infos
            for what, names in info.provides.items()
            for name in names
            if what in CHECKS
        ]
        return sorted(out, key=lambda c: (ORDER.index(c.what), c.name))

    def check(self, what: str, name: str) -> None:
        """Raise :class:`ConformanceError` listing every problem of one component."""
        if what not in [c.what for c in CATEGORIES]:
            raise ConformanceError(f"unknown component category '{what}'")
        self.registry.category(what).get(name)  # an unknown name fails with "did you mean"
        threads = torch.get_num_threads()
        # the kit's models are tiny: one thread beats the cost of syncing several,
        # by far on a shared, busy CPU
        torch.set_num_threads(1)
        try:
            problems = CHECKS[what](self, name)
        finally:
            torch.set_num_threads(threads)
        if problems:
            head = (
                f"{what} '{name}' (plugin '{self.owner(what, name)}') fails the "
                f"fubench conformance kit:"
            )
            raise ConformanceError("\n".join([head, *(f"  - {p}" for p in problems)]))


@dataclass
class Case:
    """One component to check; ``case.check()`` raises :class:`ConformanceError`."""

    kit: Kit
    what: str
    name: str
    plugin: str

    def check(self) -> None:
        self.kit.check(self.what, self.name)

    def __str__(self) -> str:
        return f"{self.what.replace(' ', '_')}:{self.name}"


_KITS: dict[int, Kit] = {}


def shared_kit(registry: Registry | None) -> Kit:
    """One shared kit per registry, so the tiny scenarios are trained once."""
    if registry is None:
        from fubench.plugins import get_registry

        registry = get_registry()
    if id(registry) not in _KITS:
        _KITS.clear()  # a new registry: drop the old one's trained models
        _KITS[id(registry)] = Kit(registry)
    return _KITS[id(registry)]


def cases(
    plugin: str | Iterable[str] | None = None,
    registry: Registry | None = None,
    builtin_only: bool = False,
) -> list[Case]:
    """The components to check: all, or those of ``plugin`` (entry-point or
    distribution name, or several)."""
    return shared_kit(registry).cases(plugin, builtin_only)
