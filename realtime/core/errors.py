"""The exception types that command lines turn into a one-line message and a non-zero exit.

They are rooted in the built-in types, so a library user catches them the usual way: every
``UserError`` is a ``ValueError`` (bad input), and a missing input file or folder
(``InputNotFoundError``) is also a ``FileNotFoundError`` (so an ``OSError``). Command lines catch
``UserError`` first, so their messages and exit status (2) do not depend on which it is.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from realtime.core.signals import exit_code, forget_unhandled, interrupted_line, raise_unhandled, stop_signals


class UserError(ValueError):
    """Bad input from the user: a missing or malformed file, an unknown name, a nonsense value.

    Raise it with a message that says what is wrong and, where it helps, what to do instead.
    Command lines catch it, print ``error: <message>`` and exit with status 2. A ``ValueError``,
    so ``except ValueError`` in a caller's code catches it.
    """


class InputNotFoundError(UserError, FileNotFoundError):
    """A named input (image, video, folder, weights, ...) that is not there: a ``UserError`` for
    the command lines, a ``FileNotFoundError`` for a library user. The message names the path."""


def exit_status(run: Callable[[], int], kept: Callable[[], str] = lambda: "") -> int:
    """Call a command line's ``run``; a ``UserError`` becomes ``error: <message>`` on stderr and
    exit status 2 (never a traceback), and so does an ``OSError`` that escapes (a full disk).
    SIGTERM and SIGHUP act as Ctrl-C while it runs (``realtime.core.signals``); an interrupt that
    ``run`` did not handle itself prints one line (with ``kept()``: what was kept, when the command
    says) and exits with 128 + the signal's number."""
    try:
        with stop_signals():
            raise_unhandled()  # a stop signal during start-up whose exception an import swallowed
            return run()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(interrupted_line(exc, kept()), file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:  # the last guard: a full disk, a file vanished mid-run; paths are checked up front
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    finally:
        forget_unhandled()


def run_command(parse_args: Callable, run: Callable, argv: list[str] | None) -> int:
    """A command line's ``main``: parse ``argv`` (the process's when None), keep the words on
    ``args.argv`` (for the command a report quotes), then ``run(args)``; parsing and running both
    inside ``exit_status`` (a bad argument is one ``error:`` line too)."""
    def parse_and_run() -> int:
        args = parse_args(argv)
        args.argv = sys.argv[1:] if argv is None else list(argv)
        return run(args)
    return exit_status(parse_and_run)


def require_files(*named: tuple[str, str | Path | None]) -> None:
    """UserError ``<what> file not found: <path>`` for the first named input file that is given
    (not None) but missing or a folder: every command line's check of its input files."""
    for what, path in named:
        if path is not None and not Path(path).is_file():
            raise InputNotFoundError(f"{what} file not found: {path}")


def model_file(path: str | Path | None, default: Callable[[], Path | None], no_default: str, what: str) -> Path:
    """``path``, or when None ``default()`` (an installed package's copy, None without one), as an
    existing file. UserError ``no_default`` when neither is there, ``<what> not found: <path>``
    when the file is missing."""
    if path is None:
        path = default()
        if path is None:
            raise UserError(no_default)
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{what} not found: {path}")
    return path
