"""Stop signals for the command lines: SIGTERM and SIGHUP behave like Ctrl-C.

``kill``, ``timeout`` and service managers send SIGTERM; closing a terminal sends SIGHUP. Python's
defaults end the process at once for both, leaving temporary files (a ``.partial`` landmarks file,
a half-encoded video) behind, while Ctrl-C raises ``KeyboardInterrupt``, which every long-running
command already turns into "finish what is complete, remove the rest". So, while a command runs,
``stop_signals()`` makes SIGTERM and SIGHUP raise ``Stopped`` (a ``KeyboardInterrupt`` carrying the
signal), and ``exit_code`` gives the shell's convention, 128 + the signal's number (130 for Ctrl-C,
143 for SIGTERM, 129 for SIGHUP).

``install_startup_hook()`` covers the moment before a command's own handling starts (imports at
start-up): an uncaught ``KeyboardInterrupt`` prints one line instead of a traceback.

A library may swallow the exception a signal raises (a bare ``except`` while it imports: a Ctrl-C
0.6-2 s into ``python -m realtime.video`` on a loaded 2-core machine was lost while torch imported,
and the command ran to the end). So the handlers here also note each signal, until a command's
``except KeyboardInterrupt`` has seen it; ``raise_unhandled()`` raises a noted one again, and
``realtime.core.errors.exit_status`` calls it before the command runs, as the video writer does
before each frame.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Callable, Iterator

from realtime.core import altstack

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                     if s is not None)


class Stopped(KeyboardInterrupt):
    """A stop signal other than SIGINT, raised where Ctrl-C would raise ``KeyboardInterrupt``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_number(exc: BaseException) -> int:
    """The signal behind a ``KeyboardInterrupt`` (SIGINT unless it is a ``Stopped``)."""
    return getattr(exc, "signum", int(signal.SIGINT))


def exit_code(exc: BaseException) -> int:
    """128 + the signal's number: the status a shell reports for a process stopped by it."""
    return 128 + signal_number(exc)


_unhandled: list[int] = []  # stop signals raised as exceptions that no handler of ours has seen yet


def _interrupt(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def _raise_noted(signum: int, frame: object) -> None:
    """The handler of the stop signals: note the signal, raise its exception."""
    _unhandled.append(signum)
    raise _interrupt(signum)


def raise_unhandled() -> None:
    """Raise again the last stop signal whose exception no handler of ours has seen (see module)."""
    if _unhandled:
        signum = _unhandled[-1]
        _unhandled.clear()
        raise _interrupt(signum)


def forget_unhandled() -> None:
    """A command's handler has seen the stop signal (or the command ended): nothing to raise again."""
    _unhandled.clear()


@contextlib.contextmanager
def handling(handler: Callable[[int, object], None], signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """While inside, ``handler`` handles ``signals`` (the stop signals by default), the previous
    handlers coming back on the way out. A signal the process was started with ignored (``nohup``
    ignores SIGHUP, a shell's background job SIGINT) stays ignored. Outside the main thread (where
    Python cannot install handlers) it does nothing. Every stop-signal path here goes through it,
    so each first makes sure the thread's signal stack is mapped (``realtime.core.altstack``: a
    library can leave it pointing at freed memory, and the next signal would then crash)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    altstack.ensure()
    previous = {sig: signal.signal(sig, handler) for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_signals() -> contextlib.AbstractContextManager:
    """While inside, SIGTERM and SIGHUP raise ``Stopped`` in the main thread (Ctrl-C keeps raising
    ``KeyboardInterrupt``), ignored ones staying ignored (``handling``)."""
    return handling(_raise_noted, tuple(s for s in STOP_SIGNALS if s != signal.SIGINT))


def interrupted_line(exc: BaseException, what: str = "") -> str:
    """The one line printed for a stopped command: the signal's name and what was kept."""
    name = "Ctrl-C" if signal_number(exc) == signal.SIGINT else signal.Signals(signal_number(exc)).name
    return f"interrupted ({name})" + (f": {what}" if what else "")


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``exc`` was raised from or while handling, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def install_startup_hook() -> None:
    """An uncaught ``KeyboardInterrupt`` (Ctrl-C while a command is still importing), or an
    exception raised from one, prints one line instead of a traceback; every other exception goes
    to the previous hook. Installed only
    when a module of this project runs as ``python -m ...`` (``sys.argv[0] == '-m'`` while the
    package imports), so a program that imports the package keeps its own hook."""
    if not sys.argv or sys.argv[0] != "-m" or getattr(sys.excepthook, "_rcn_startup", False):
        return
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        interrupt = value if isinstance(value, KeyboardInterrupt) else _interrupt_behind(value)
        if interrupt is None:
            previous(kind, value, tb)
            return
        print(interrupted_line(interrupt, "nothing was written"), file=sys.stderr)
        if interrupt is not value:
            # wrapped in another exception (Python 3.11 wraps one raised inside a class's
            # ``__set_name__``, as torch's import runs them): end as the signal itself would, like
            # an uncaught KeyboardInterrupt does, not with the wrapper's status 1
            sys.stderr.flush()
            signum = signal_number(interrupt)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    hook._rcn_startup = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with Ctrl-C ignored
        signal.signal(signal.SIGINT, _raise_noted)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A critical section: a stop signal arriving inside is held until the end, then raised as it
    would have been (``KeyboardInterrupt`` for Ctrl-C, ``Stopped`` for the others). Used around a
    frame's writes so an interrupt never lands inside the video encoder (which would leave an
    unreadable file) or between a frame's video and its landmarks record."""
    pending: list[int] = []
    with handling(lambda signum, frame: pending.append(signum)):
        yield
    if pending:
        if pending[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped(pending[0])
