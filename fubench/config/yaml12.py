"""Reading YAML safely: a strict loader (duplicate keys are errors) with bounded work, so
a tiny hostile file (an alias bomb, a list nested thousands deep) costs milliseconds."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from fubench.errors import ConfigError, one_line

#: scenario files are a few kilobytes; refuse anything far larger before parsing
MAX_FILE_BYTES = 1_000_000
#: nesting deeper than this is not a scenario file
MAX_DEPTH = 50
#: scalars + collection entries after alias expansion; refuses "billion laughs" files
MAX_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys and bounds depth and expanded size."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._expanded: dict[int, int] = {}
        self._depth = 0

    # the scanner looks far ahead inside flow collections ([[[...), so a deep one costs
    # quadratic time before a node is composed: refuse it while scanning
    def fetch_flow_collection_start(self, token_class: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels")
        super().fetch_flow_collection_start(token_class)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels")
        return super().add_indent(column)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Any) -> Any:
        if _size(node, self._expanded) > MAX_NODES:
            raise _Refused(
                f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?)"
            )
        return super().construct_document(node)


# Scalars are read as YAML 1.2 (its core schema) reads them, not as PyYAML's YAML 1.1:
# there 1e-3 is a string, 010 is 8 (octal), 1:05 is 65 (base 60), 1_0 is 10, yes, no,
# on and off are booleans and 2020-01-01 a date, so a typo became another value without a
# word. Here only true/false (True, TRUE, ...) are booleans, integers are decimal (or
# 0o17, 0x1f), and floats may carry an exponent; anything else is a string, which the
# settings then refuse by type.
_YAML_1_1_SCALARS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:value",
}
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _YAML_1_1_SCALARS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(  # before float: "10" is an integer
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)  # 010 is ten


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _Refused(Exception):
    """The file is refused before it is built (too deep, too large)."""


def _size(node: Any, memo: dict[int, int]) -> int:
    """Values in ``node`` once aliases are expanded, computed once per distinct node
    (aliases share node objects), so counting is linear in the file's size."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a cycle counts once
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_size(k, memo) + _size(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, MAX_NODES + 1)
    return memo[key]


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: merged below by
            key = "<<"  # SafeLoader, explicit keys winning
        else:
            key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key (a list or mapping as a key)
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a name, not a list or mapping", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{key}' (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``, or a one-line :class:`ConfigError`."""
    file = str(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(file, "", "a folder, not a scenario file")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            raise ConfigError(file, "", "a device, not a scenario file")
        with open(path, "rb") as handle:  # bounded: /dev/zero or a huge file costs nothing
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read file: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL byte in the path
        raise ConfigError(file, "", f"cannot read file: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            file, "", f"more than {MAX_FILE_BYTES:,} bytes; a scenario file is a few kilobytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            file, "", f"not UTF-8 text (byte {exc.start}); is this a scenario YAML file?"
        ) from None
    if "\x00" in text:
        raise ConfigError(file, "", "binary data (a NUL byte); is this a scenario YAML file?")
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str, key: str = "", lines: bool = True) -> Any:
    """``text`` read as YAML 1.2 by the strict reader, or a one-line :class:`ConfigError`
    naming ``file`` and ``key`` (``lines``: whether the error says the line, which a
    one-line value from the command line does not need)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _Refused as exc:
        raise ConfigError(file, key, f"refused: {exc}") from None
    except RecursionError:
        raise ConfigError(file, key, f"refused: nesting deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None and lines else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(file, key, f"{where}invalid YAML: {problem}") from None
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        # a value YAML cannot build: an integer of 5,000 digits, a date like 2020-13-45
        raise ConfigError(file, key, f"invalid YAML value: {one_line(exc)}") from None
