"""No docstring or message of the package cites a file outside the repository (issue 25): the
runtime (``realtime/``) never names ``../shared`` (the folder beside the repository where this
project's machines keep licensed data and notes; a user of the package has none of it), and the
training recipes (``train/``) name it only as a command-line default that the user overrides
(docs/data.md says what each set is and where to get it). Tests may read it: they skip without it."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared\b|\bshared/(data|models|PAPERS|ENVIRONMENT|STYLE)")
# the long run's model card states the folder its data came from (train/recipes/faces68_recipe.py, the
# recipe the lead's training run executes; left for that work to change)
KNOWN = {("train/recipes/faces68_recipe.py", "Data: 300-W's training split as far as")}


def citations(package: str) -> list[tuple[str, int, str, str]]:
    """(file, line number, line, the line before) for every line of ``package`` naming ../shared."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if OUTSIDE.search(line):
                found.append((path.relative_to(REPO).as_posix(), i + 1, line, lines[i - 1] if i else ""))
    return found


def test_the_runtime_cites_nothing_outside_the_repository():
    assert [f"{f}:{n}: {line.strip()}" for f, n, line, _ in citations("realtime")] == []


def test_train_names_the_shared_folder_only_as_an_overridable_default():
    def allowed(path: str, line: str, before: str) -> bool:
        if any(path == f and text in line for f, text in KNOWN):
            return True
        return "default" in line.lower() or "default" in before.lower()  # default=..., DEFAULT_X = ..., (default: ...)

    stray = [f"{f}:{n}: {line.strip()}" for f, n, line, before in citations("train") if not allowed(f, line, before)]
    assert stray == [], "say 'the 300-W folder (docs/data.md)' instead: " + "; ".join(stray)


def test_the_data_page_exists_and_the_index_links_it():
    assert "the 300-W folder" in (REPO / "docs" / "data.md").read_text()
    assert "(data.md)" in (REPO / "docs" / "README.md").read_text()
