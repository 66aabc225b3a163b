"""Names of metrics measured at one point of a request stream.

A request stream (:mod:`fubench.stream`) measures the same metric at several points, so
its columns qualify the metric's name: ``<metric>@<k>`` is the metric right after
request k was unlearned (against the gold standard retrained without everything
forgotten by then), ``<metric>@<k>.end`` is request k's metric on the final models
(against the final gold standard). A qualified column keeps every declaration of its
metric (direction, ideal, role, unit); a normalised one normalises its raw metric at
the same point (``nfs@2`` normalises ``target_acc@2``). Tables find the declarations
through :func:`lookup`, so they read qualified columns like any other."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

SEPARATOR = "@"
END = "end"


def split(name: str) -> tuple[str, str | None]:
    """(metric, where) of a column name; where is None for an unqualified name."""
    base, sep, where = name.partition(SEPARATOR)
    return (base, where) if sep else (name, None)


def qualify(metric: str, where: str) -> str:
    return f"{metric}{SEPARATOR}{where}"


def after(request: int) -> str:
    """The point right after request ``request`` (1-based) was unlearned."""
    return str(request)


def at_end(request: int) -> str:
    """Request ``request``'s data, measured on the final models."""
    return f"{request}.{END}"


def point(where: str) -> tuple[int, bool] | None:
    """(request, at the end) of a qualifier, or None when it is not one."""
    number, dot, rest = where.partition(".")
    if not number.isdigit() or number.startswith("0") or (dot and rest != END):
        return None
    return int(number), bool(dot)


def lookup(classes: Mapping[str, type], name: str) -> type | None:
    """The metric class a column ``name`` is read with: the registered one, or for a
    qualified name its metric's class renamed (None when neither is registered)."""
    cls = classes.get(name)
    if cls is not None:
        return cls
    base, where = split(name)
    if where is None or point(where) is None or base not in classes:
        return None
    return qualified_class(classes[base], where)


@cache
def qualified_class(cls: type, where: str) -> type:
    """``cls`` under the name ``<name>@<where>``, its raw twin qualified alike."""
    attrs: dict[str, Any] = {
        "name": qualify(cls.name, where),
        "__doc__": cls.__doc__,
        "__module__": cls.__module__,
    }
    if getattr(cls, "normalises", None):
        attrs["normalises"] = qualify(cls.normalises, where)
    return type(cls.__name__, (cls,), attrs)
