"""Errors a user or a plugin author can meet; each prints as one line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FubenchError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigError(FubenchError):
    """A scenario file is malformed: names the file, the key and what was expected.
    Always one line, whatever characters the file name, key or message hold."""

    def __init__(self, file: str, key: str, message: str):
        self.file, self.key, self.message = file, key, message
        text = f"{file}: {key}: {message}" if key else f"{file}: {message}"
        if len(text) > 1000:  # a plugin's message may show a whole value
            text = text[:997] + "..."
        super().__init__(single_line(text))


class EnvironmentFailure(FubenchError):
    """The machine failed a run that had started (a disk filled up, a folder turned
    read-only): not the user's input, not a bug. What finished is saved; rerun."""


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


#: characters str.splitlines() breaks on
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def single_line(text: str) -> str:
    """``text`` with every line break turned into a space."""
    return text.translate(_LINE_BREAKS)


def shown(value: object, limit: int = 40) -> str:
    """A repr of ``value`` at most ``limit`` characters long, built in bounded time and
    memory however large the value is (a list of a million aliases, a 10^400 integer)."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit
    r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 6
    r.maxdict = 4
    r.maxlevel = 3
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        text = f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    else:
        text = single_line(r.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`"; did you mean 'x'?"` when a close match exists, else an empty string."""
    if len(name) > 200:  # nothing registered is that long; spare difflib the work
        return ""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown(what: str, name: str, known: Iterable[str]) -> str:
    """The one-line message for an unknown name, with suggestions and the choices."""
    known = sorted(known)
    if not isinstance(name, str):
        return f"expected a {what} name, got {shown(name)}; available: {', '.join(known)}"
    return (
        f"unknown {what} {shown(name, 60)}{did_you_mean(name, known)} available: {', '.join(known)}"
    )


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, however many lines the message had."""
    text = " ".join(str(exc).split())
    if len(text) > 500:
        text = text[:497] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def os_error(exc: OSError) -> str:
    """``Permission denied: '/a/b'``: what the system refused, and where, on one line."""
    if exc.strerror:
        where = [repr(str(f)) for f in (exc.filename, exc.filename2) if f is not None]
        return single_line(f"{exc.strerror}: {' -> '.join(where)}" if where else exc.strerror)
    return one_line(exc)


def origin(exc: BaseException, skip: tuple[str, ...] = ()) -> str:
    """`` (file.py:12)``: the innermost line that raised, outside importlib and the
    ``skip`` path fragments (e.g. fubench's own engine), or "" when none is known."""
    import os
    import traceback

    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({os.path.basename(exc.filename)}:{exc.lineno})"
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<")
        and "importlib" not in f.filename
        and not any(s in f.filename for s in skip)
    ]
    return f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
