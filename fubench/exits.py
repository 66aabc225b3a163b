"""How fubench ends: only when its user says so.

Plugin code runs inside fubench's process (or a worker's), where ``sys.exit``,
``os._exit`` and a ``KeyboardInterrupt`` would end the run — silently, and with exit
code 0 when the plugin says so. Here they become that plugin's failure instead:

* :func:`user_signals` makes Ctrl-C (SIGINT) and SIGTERM the user's: they raise
  ``KeyboardInterrupt`` / :class:`Terminated` and are remembered as the user's, so
  :func:`users_interrupt` can tell them from a ``KeyboardInterrupt`` plugin code raised;
* :func:`plugin_code` makes ``os._exit`` raise :class:`PluginExit` in the thread that
  runs plugin code (another process or thread still exits);
* :func:`failure_line` says what plugin code did, on one line.

A caller that runs plugin code catches ``BaseException``, re-raises it when
:func:`users_interrupt` says so, and records the rest as the plugin's failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

from fubench.errors import one_line, shown


class Terminated(KeyboardInterrupt):
    """The user (or a job scheduler) sent SIGTERM: handled like Ctrl-C."""


class PluginExit(BaseException):
    """Plugin code called ``os._exit(code)``; raised in its place (see :func:`plugin_code`)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


# -- the user's signals
#: "library": no handler of ours (a KeyboardInterrupt is taken to be the user's);
#: "watching": ours are installed; "deaf": a worker, whose parent takes the signals
_mode = "library"
_user_asked = False


def _on_signal(signum: int, frame: object) -> None:
    global _user_asked
    _user_asked = True
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


@contextlib.contextmanager
def user_signals() -> Iterator[None]:
    """While inside, SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated`,
    both known to be the user's. Only the main thread can take signals: elsewhere, and
    inside another ``user_signals``, nothing changes."""
    global _mode, _user_asked
    if threading.current_thread() is not threading.main_thread() or _mode != "library":
        yield
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in handled}
    for s in handled:
        signal.signal(s, _on_signal)
    _mode = "watching"
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _mode, _user_asked = "library", False


def ignore_user_signals() -> None:
    """In a worker process: SIGINT and SIGTERM are for the ``fubench`` process, which
    stops its workers itself (a terminal's Ctrl-C reaches every process of the group:
    a worker must not print a traceback or stop on its own), and every
    ``KeyboardInterrupt`` here is plugin code's."""
    global _mode
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    _mode = "deaf"


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while inside (main thread only): a process started
    here inherits that from its first instruction, before it could install anything."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in handled}
    for s in handled:
        signal.signal(s, signal.SIG_IGN)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def users_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's interrupt (let it end the run), not plugin code's
    failure. Without :func:`user_signals` (fubench called as a library) every
    ``KeyboardInterrupt`` is taken to be the user's."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    return _user_asked or _mode == "library"


# -- plugin code
_real_exit = os._exit
#: (process, thread) pairs running plugin code
_guarded: set[tuple[int, int]] = set()


def _exit(code: int) -> None:
    if (os.getpid(), threading.get_ident()) in _guarded:
        raise PluginExit(code)
    _real_exit(code)


@contextlib.contextmanager
def plugin_code() -> Iterator[None]:
    """Run plugin code: ``os._exit`` in this thread raises :class:`PluginExit` instead
    of ending the process. A process forked inside, and every other thread, still
    exits: the check is by process and thread."""
    key = (os.getpid(), threading.get_ident())
    if key in _guarded:
        yield
        return
    os._exit = _exit
    _guarded.add(key)
    try:
        yield
    finally:
        _guarded.discard(key)


def failure_line(exc: BaseException) -> str:
    """What plugin code did, on one line: an exception's ``Type: message``, or how it
    tried to end the process."""
    if isinstance(exc, PluginExit):
        return (
            f"os._exit({exc.code}) in plugin code; a plugin may not end fubench: raise an exception"
        )
    if isinstance(exc, SystemExit):
        return (
            f"sys.exit({shown(exc.code)}) in plugin code (SystemExit); a plugin may not end "
            f"fubench: raise an exception"
        )
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt raised by plugin code, not by Ctrl-C; raise another exception"
    return one_line(exc)
