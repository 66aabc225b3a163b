"""Errors a user or a plugin author can meet; each prints as one line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FubenchError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigError(FubenchError):
    """A scenario file is malformed: names the file, the key and what was expected."""

    def __init__(self, file: str, key: str, message: str):
        self.file, self.key, self.message = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


class PluginError(FubenchError):
    """A plugin is broken (duplicate name, bad hook, missing `name`)."""


class UnknownNameError(FubenchError):
    """A name that no plugin registered."""


class ParticipationError(FubenchError):
    """A method asked the federation for work from a client it declared it would not use."""


class NotApplicable(FubenchError):
    """Raised by a method that cannot serve a scenario; recorded as status "n/a"."""


class DataUnavailable(FubenchError):
    """A data set is neither on disk nor downloadable; the message says how to get it."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`"; did you mean 'x'?"` when a close match exists, else an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown(what: str, name: str, known: Iterable[str]) -> str:
    """The one-line message for an unknown name, with suggestions and the choices."""
    known = sorted(known)
    return f"unknown {what} '{name}'{did_you_mean(name, known)} available: {', '.join(known)}"


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, however many lines the message had."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def origin(exc: BaseException, skip: tuple[str, ...] = ()) -> str:
    """`` (file.py:12)``: the innermost line that raised, outside importlib and the
    ``skip`` path fragments (e.g. fubench's own engine), or "" when none is known."""
    import os
    import traceback

    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({os.path.basename(exc.filename)}:{exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<") and "importlib" not in f.filename
              and not any(s in f.filename for s in skip)]
    return f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
