"""Output paths checked before any work starts, the same way for every command line.

A job that runs for minutes and then dies at its final rename (the output is a directory, the
folder is read-only) throws the work away; one that writes its video over its own input destroys
the user's file. ``prepare_outputs`` refuses, with one ``UserError`` line and before anything is
created:

- an output that is one of the inputs (same file, through any path or link);
- two outputs that are the same file;
- a file output that is an existing directory, or a folder output that is an existing file;
- an output whose folder cannot be written (read-only, or a path through a file);
- a file extension that does not name the format written (the message names the expected ones).

Then it creates missing parent folders, saying so on stderr.
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from realtime.core.errors import UserError


@dataclass(frozen=True)
class Output:
    """One output of a command: ``path`` as given, the option that named it (``flag``, for the
    message), the extensions it may carry (``suffixes``, lower case with the dot; empty: any), and
    whether it is a folder."""
    path: str | Path
    flag: str
    suffixes: tuple[str, ...] = field(default_factory=tuple)
    folder: bool = False


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _first_existing(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists."""
    path = _resolved(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder``: tried for real (a temporary file, removed at
    once), since permission bits do not tell for root, read-only mounts or special filesystems."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | Path | None] = ()) -> list[Path]:
    """Check ``outputs`` against each other and against ``inputs`` (module docstring); returns the
    parent folders that do not exist yet (to be created), outermost first. Raises ``UserError``."""
    outputs = [o for o in outputs if o.path is not None]
    inputs = [Path(i) for i in inputs if i is not None]
    missing: list[Path] = []
    seen: dict[Path, str] = {}
    for out in outputs:  # first what would destroy a file: an output on an input or on another output
        path = Path(out.path)
        if str(out.path).strip() == "":
            raise UserError(f"{out.flag} is empty: give a file name")
        real = _resolved(path)
        for given in inputs:
            if real == _resolved(given) or _same_file(path, given):
                raise UserError(f"{out.flag} {path} is the input {given}: it would be overwritten; "
                                "choose another output name")
        if real in seen:
            raise UserError(f"{seen[real]} and {out.flag} name the same file ({path}): give each its own name")
        seen[real] = out.flag
    for out in outputs:
        path = Path(out.path)
        if out.folder:
            if path.exists() and not path.is_dir():
                raise UserError(f"{out.flag} {path} is a file, not a folder: give a folder name")
        else:
            if path.is_dir():
                example = f" such as {path / ('out' + out.suffixes[0])}" if out.suffixes else ""
                raise UserError(f"{out.flag} {path} is a folder: give a file name{example}")
            if out.suffixes and path.suffix.lower() not in out.suffixes:
                raise UserError(f"{out.flag} {path}: expected a {' or '.join(out.suffixes)} file name "
                                f"(the format written), not {path.suffix or 'no extension'!r}")
        anchor = _first_existing(path if out.folder else path.parent)
        if not anchor.is_dir():
            raise UserError(f"{out.flag} {path}: {anchor} is a file, so no folder can be made under it")
        if not _writable(anchor):
            raise UserError(f"{out.flag} {path}: cannot write in {anchor} (permission denied or read-only)")
        if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
            raise UserError(f"{out.flag} {path} exists and is read-only")
        parent = _resolved(path if out.folder else path.parent)
        chain = []
        while not parent.exists():
            chain.append(parent)
            parent = parent.parent
        for folder in reversed(chain):
            if folder not in missing:
                missing.append(folder)
    return missing


def make_folders(missing: Iterable[Path], quiet: bool = False) -> None:
    """Create the folders ``check_outputs`` found missing (outermost first), saying so on stderr.
    Call it once the inputs have been opened, just before the first output is written, so a
    command that fails on its inputs creates nothing."""
    for folder in missing:
        if not folder.exists():
            folder.mkdir()
            if not quiet:
                print(f"created folder {folder}", file=sys.stderr)


def prepare_outputs(outputs: Iterable[Output], inputs: Iterable[str | Path | None] = ()) -> None:
    """``check_outputs`` and ``make_folders`` at once (for commands with nothing to open first)."""
    make_folders(check_outputs(outputs, inputs))
