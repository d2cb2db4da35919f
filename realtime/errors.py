"""The one exception type that command lines turn into a one-line message and a non-zero exit."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable


class UserError(Exception):
    """Bad input from the user: a missing or malformed file, an unknown name, a nonsense value.

    Raise it with a message that says what is wrong and, where it helps, what to do instead.
    Command lines catch it, print ``error: <message>`` and exit with status 2.
    """


def exit_status(run: Callable[[], int]) -> int:
    """Call a command line's ``run``; a ``UserError`` becomes ``error: <message>`` on stderr and
    exit status 2 (never a traceback)."""
    try:
        return run()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_command(parse_args: Callable, run: Callable, argv: list[str] | None) -> int:
    """A command line's ``main``: parse ``argv`` (the process's when None), keep the words on
    ``args.argv`` (for the command a report quotes), then ``exit_status(run(args))``."""
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    return exit_status(lambda: run(args))


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
        raise UserError(f"{what} not found: {path}")
    return path
