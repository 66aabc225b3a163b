"""The plugin manifest: what ``fubench list`` and ``fubench show`` print, kept from the
last time the plugins were imported, so that they start without importing any plugin
module (and so torch).

The manifest is a JSON file in the user cache (``plugin-manifest.json`` in the model
cache folder, ``$FUBENCH_CACHE``), stored with a fingerprint of everything that decides
it: the fubench version, the plugin switches of the environment, every entry point of
the ``fubench`` group (name, value, distribution and version) and the size and
modification time of every source file of the packages they live in (the built-ins and
fubench itself included). When the fingerprint differs, the file is unreadable, or a
plugin failed to load, the commands import the plugins as before and write the manifest
again; a stale or broken manifest is never an error."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from fubench.cache_dir import cache_root
from fubench.cli.cards import Catalog, catalog_of

#: bump when the layout of the manifest (the cards) changes
MANIFEST_FORMAT = 1
MANIFEST_NAME = "plugin-manifest.json"
#: environment variables that change which plugins load
SWITCHES = ("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", "FUBENCH_PLUGINS")


def manifest_path() -> Path:
    """Beside the trained models: the same folder, moved by ``$FUBENCH_CACHE``."""
    return cache_root() / MANIFEST_NAME


def catalog() -> Catalog:
    """The cards of every installed component: from the manifest when it is current,
    else from the plugins themselves (imported; the manifest is written again)."""
    from fubench import plugins

    if plugins.loaded_registry() is not None:  # loaded already (or set by a test): use it
        return catalog_of(plugins.get_registry())
    key = fingerprint()
    stored = read_manifest(key)
    if stored is not None:
        return stored
    registry = plugins.get_registry()
    built = catalog_of(registry)
    if all(p.problem is None and p.distribution != plugins.LOCAL for p in registry.plugins):
        write_manifest(key, built)  # a broken plugin is imported (and reported) every time
    return built


def read_manifest(key: str) -> Catalog | None:
    """The stored catalog when its fingerprint is ``key``; None when there is none, it
    is stale, or it cannot be read."""
    try:
        data = json.loads(manifest_path().read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT or data.get("fingerprint") != key:
            return None
        return Catalog.from_json(data["catalog"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_manifest(key: str, built: Catalog) -> None:
    """Store the catalog atomically; a cache that cannot be written only costs speed."""
    from fubench.results import write_text_atomic

    text = json.dumps({"format": MANIFEST_FORMAT, "fingerprint": key, "catalog": built.to_json()})
    try:
        write_text_atomic(manifest_path(), text)
    except OSError:
        pass


def fingerprint() -> str:
    """A hash of everything the manifest depends on (see the module's description)."""
    from fubench import __version__, plugins

    wanted = [ep for ep in plugins.plugin_entry_points() if plugins.wanted(ep)]
    parts: dict[str, Any] = {
        "fubench": __version__,
        "switches": {name: os.environ.get(name) for name in SWITCHES},
        "entry_points": [
            (ep.name, ep.value, *((ep.dist.name, ep.dist.version) if ep.dist else ("?", "?")))
            for ep in wanted
        ],
    }
    tops = sorted({"fubench", *(ep.module.split(".")[0] for ep in wanted)})
    parts["sources"] = {top: source_stats(top) for top in tops}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def source_stats(top: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every source file of a top-level module or package,
    found without importing it."""
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: nothing is executed
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return []
    files = [Path(spec.origin)] if spec.origin and not spec.submodule_search_locations else []
    for folder in spec.submodule_search_locations or ():
        files += sorted(Path(folder).rglob("*.py"))
    stats = []
    for file in files:
        try:
            st = file.stat()
        except OSError:
            continue
        stats.append((str(file), st.st_size, st.st_mtime_ns))
    return stats
