"""``rcn``: one console command for every command line, ``rcn COMMAND [ARGS ...]``.

Each subcommand is a module's existing ``main(argv)``, called with the words after its name, so
``rcn video clip.mp4 -o out.mp4`` is ``python -m realtime.video clip.mp4 -o out.mp4`` (the same
arguments, messages and exit status; both forms stay). The runtime's own commands are listed here
(``COMMANDS``); other installed packages add theirs through the entry-point group ``rcn.commands``
(``name = "package.module:main"``), which is how this project's pyproject.toml registers the training
commands without ``realtime`` naming ``train``. A command's module is imported only when it runs:
``rcn --help`` reads each module's docstring from its source (no torch, well under a second).

``rcn --help`` lists the commands with one line each; ``rcn COMMAND --help`` is the command's own
help, under the name ``rcn COMMAND``; ``rcn --version`` prints the versions a bug report needs; an
unknown command is one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from realtime.core.assets import LANDMARKS_68
from realtime.core.cliargs import Parser, renamed_prog
from realtime.core.errors import UserError, exit_status

GROUP = "rcn.commands"  # the entry-point group through which other packages add commands

# the runtime's commands: name -> "module:function"
COMMANDS = {
    "video": "realtime.video:main",
    "webcam": "realtime.webcam:main",
    "bench": "realtime.bench:main",
    "clipscore": "realtime.clipscore:main",
    "assets": "realtime.core.assets:main",
}


@dataclass(frozen=True)
class Command:
    """A subcommand: its name and where its ``main(argv)`` lives (``"module:function"``)."""

    name: str
    target: str

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def prog(self) -> str:
        """The name the module's own parser gives itself (``python -m realtime.video``, and
        ``python -m train`` for a package's ``__main__``)."""
        return "python -m " + self.module.removesuffix(".__main__")

    def summary(self) -> str:
        """One line for ``rcn --help``: the first sentence of the module's docstring, read from its
        source without importing it (a leading ````python -m ...``:```` dropped, but for the
        ``{sub,commands}`` it names)."""
        source = module_source(self.module)
        if source is None:
            return ""
        doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))) or ""
        text = " ".join(doc.split("\n\n")[0].split())
        usage = re.match(r"``[^`{]*(\{[^}]*\})?[^`]*``:\s*", text)  # ``python -m train {fit,...}``: ...
        text = text[usage.end():] if usage else text
        sentence = re.split(r"(?<=[.:;])\s", text.replace("``", ""), maxsplit=1)[0].rstrip(".:;")
        choices = f" {usage.group(1)}" if usage and usage.group(1) else ""
        return sentence[:1].upper() + sentence[1:] + choices

    def run(self, argv: list[str]) -> int:
        module, _, function = self.target.partition(":")
        main = getattr(importlib.import_module(module), function or "main")
        with renamed_prog(self.prog, f"rcn {self.name}"):
            return main(argv)


def module_source(module: str) -> Path | None:
    """The ``.py`` file of ``module``, found without importing it or its packages (``find_spec`` of a
    submodule would run its packages' ``__init__``); None when it is not a plain source file."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent.joinpath(*rest) if rest else Path(spec.origin)
    for candidate in (path, path.with_suffix(".py"), path / "__init__.py"):
        if candidate.suffix == ".py" and candidate.is_file():
            return candidate
    return None


def commands() -> dict[str, Command]:
    """The runtime's commands, then those of the ``rcn.commands`` entry points (a name the runtime
    already uses is kept for the runtime's command)."""
    found = {name: Command(name, target) for name, target in COMMANDS.items()}
    for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
        found.setdefault(ep.name, Command(ep.name, ep.value))
    return found


def help_text(found: dict[str, Command]) -> str:
    width = max(len(name) for name in found)
    lines = ["usage: rcn COMMAND [ARGS ...]    (rcn COMMAND --help: the command's own options)", "",
             "Real-time facial landmarks: one command, a subcommand per job. Each is also",
             "`python -m MODULE` with the same arguments (docs/cli.md).", "", "commands:"]
    for name, command in found.items():
        lines.append(f"  {name:<{width}}  {command.summary()}")
    lines += ["", "options:", "  -h, --help   this list", "  --version    the versions of this package, its "
              "libraries and the weights (--weights W for another file)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    found = commands()
    if not words or words[0] in ("-h", "--help"):
        print(help_text(found), file=sys.stdout if words else sys.stderr)
        return 0 if words else 2
    if words[0] == "--version":  # exits 0 after printing (realtime.core.cliargs.Parser)
        Parser(prog="rcn", add_help=False, version_weights=LANDMARKS_68).parse_args(words)

    def unknown() -> int:
        what = "option" if words[0].startswith("-") else "command"
        raise UserError(f"unknown {what} {words[0]!r}; the commands are {', '.join(found)} (see 'rcn --help')")

    if words[0] not in found:
        return exit_status(unknown)
    return found[words[0]].run(words[1:])
