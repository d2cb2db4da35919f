"""What every command line shares in parsing: one-line errors, checked numbers, helpful ``--help``.

- ``Parser``: argparse that reports a bad argument as one ``error:`` line (exit 2 through
  ``realtime.core.errors``) instead of usage + message, and whose ``--help`` shows each option's default
  and its allowed range.
- ``number(kind, lo, hi, ...)``: an argparse ``type`` that accepts only finite numbers inside a range
  (``nan``, ``inf`` and out-of-range values are refused with the range in the message); ``Range`` is
  the same check for values that do not come from the command line (the webcam's live panel).
- ``Parser(..., version_weights=W)``: ``--version``, the versions a bug report needs.
- ``renamed_prog(old, new)``: while a command runs as a subcommand of ``rcn`` (``realtime.cli.rcn``),
  its parser calls itself ``rcn video`` instead of ``python -m realtime.video`` in usage and errors.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from realtime.core.errors import UserError
from realtime.core.versions import version_report


@dataclass(frozen=True)
class Range:
    """A closed or open numeric interval; ``None`` ends are unbounded."""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def text(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"{'(' if self.lo_open else '['}{_fmt(self.lo)}, {_fmt(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}"
        return "any finite number"

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        if self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)):
            return False
        return True

    def check(self, value: float, name: str) -> float:
        """``value`` if inside, else ``UserError`` naming ``name`` and the range."""
        if not self.contains(value):
            raise UserError(f"{name} must be {self.text()}, got {value}")
        return value


# Ranges shared by the command lines and the webcam's live panel (``realtime.pipeline.live.LiveParams``).
FOCAL_PX = Range(0, lo_open=True)                  # camera focal length, pixels
HFOV_DEG = Range(0, 180, lo_open=True, hi_open=True)  # horizontal field of view, degrees
SCORE = Range(0, 1)                                # a detector or landmark score threshold


def number_list(flag: str, text: str, kind: type = float, valid: Range = Range(), empty: bool = False) -> list:
    """A comma list of ``kind`` (int or float) numbers, each finite and inside ``valid``, e.g.
    ``--batches 1,8,64``; "" is [] when ``empty`` allows it. Anything else is a ``UserError``
    naming ``flag`` and the range."""
    if empty and not text.strip():
        return []
    what = "whole numbers" if kind is int else "numbers"
    try:
        values = [kind(t) for t in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(valid.contains(float(v)) for v in values):
        raise UserError(f"{flag} must be a comma list of {what} {valid.text()}, got {text!r}")
    return values


def name_list(flag: str, text: str, choices: tuple[str, ...] | list[str], noun: str, empty: bool = False) -> list[str]:
    """A comma list of names, each one of ``choices``, in the order given and each once, e.g.
    ``--parts landmarks,pipeline``; "" is [] when ``empty`` allows it. An unknown or (unless
    ``empty``) missing name is a ``UserError`` naming ``flag`` and the choices."""
    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in choices]
    if unknown:
        raise UserError(f"{flag}: unknown {noun}(s) {', '.join(unknown)}: choose from {', '.join(choices)}")
    if not names and not empty:
        raise UserError(f"{flag}: name at least one {noun} of {', '.join(choices)}, got {text!r}")
    return names


def _fmt(value: float) -> str:
    return f"{value:g}"


class NumberType:
    """argparse ``type``: ``kind`` (int or float) parsed from text, finite and inside ``range``."""

    def __init__(self, kind: type, valid: Range) -> None:
        self.kind, self.range = kind, valid
        self.__name__ = kind.__name__  # argparse names the type in some messages

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except ValueError:
            what = "a whole number" if self.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what} {self.range.text()}, got {text!r}") from None
        if not self.range.contains(float(value)):
            raise argparse.ArgumentTypeError(f"must be {self.range.text()}, got {text}")
        return value


def number(kind: type = float, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False, hi_open: bool = False) -> NumberType:
    """A checked numeric argparse type, e.g. ``number(float, 0, 1)`` or ``number(int, 1)``."""
    return NumberType(kind, Range(lo, hi, lo_open, hi_open))


def positive(kind: type = float) -> NumberType:
    """> 0 (int: >= 1)."""
    return number(kind, 1) if kind is int else number(kind, 0, lo_open=True)


def fraction() -> NumberType:
    """A fraction in [0, 1]."""
    return number(float, 0, 1)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks, drops the docstrings' RST double backticks, and appends
    ``(default: X; range R)`` to each option's help unless the help already names its default."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", ""))

    def _expand_help(self, action: argparse.Action) -> str:
        return super()._expand_help(action).replace("``", "")

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.help is argparse.SUPPRESS:
            return text
        extra = []
        if isinstance(action.type, NumberType):
            extra.append(f"range {action.type.range.text()}")
        shows_default = "default" in text.lower()
        if (not shows_default and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings and action.nargs != 0):
            extra.insert(0, "default: %(default)s")
        if extra:
            text = f"{text} ({'; '.join(extra)})" if text else "; ".join(extra)
        return text


_RENAMED: dict[str, str] = {}  # a parser's own prog -> the name it runs under now (renamed_prog)


@contextlib.contextmanager
def renamed_prog(old: str, new: str) -> Iterator[None]:
    """Inside the block, a ``Parser`` made with ``prog=old`` takes ``prog=new`` (its subcommands'
    names follow): the usage lines and ``(see '... --help')`` hints name the command as it was
    typed, ``rcn video`` rather than ``python -m realtime.video``."""
    _RENAMED[old] = new
    try:
        yield
    finally:
        _RENAMED.pop(old, None)


class Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line (exit 2 through ``realtime.core.errors``) instead
    of usage + error, with ``HelpFormatter`` as its help.

    ``version_weights``: the command's default weights file; given, the parser takes ``--version``,
    which prints ``realtime.core.versions.version_report`` for the ``--weights`` on the same command
    line (anywhere on it), else for that default, and exits 0 before any other argument is checked.
    """

    def __init__(self, *args, version_weights: str | Path | None = None, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        if kwargs.get("prog") in _RENAMED:
            kwargs["prog"] = _RENAMED[kwargs["prog"]]
        super().__init__(*args, **kwargs)
        self.version_weights = version_weights
        if version_weights is not None:
            self.add_argument("--version", action="store_true", help="print the versions of this package, "
                              "torch, OpenCV, PyAV, onnxruntime, OpenVINO and the weights file, and exit")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        words = sys.argv[1:] if args is None else list(args)
        before_dashes = words[:words.index("--")] if "--" in words else words
        if self.version_weights is not None and "--version" in before_dashes:
            weights = argparse.ArgumentParser(add_help=False)
            weights.add_argument("--weights", default=str(self.version_weights))
            print(version_report(weights.parse_known_args(before_dashes)[0].weights))
            self.exit(0)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see '{self.prog} --help')")
