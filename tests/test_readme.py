"""The README's examples run as written: its Python snippets (the three-line API on the bundled
photo, ``track`` on the bundled clip) and its command lines (run, or parsed where they need a
camera), from a folder that holds the repository's ``assets/`` as the README's commands expect;
and its links point at files that exist."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


@pytest.fixture
def in_a_user_folder(tmp_path, monkeypatch) -> Path:
    """A fresh working folder with ``assets/`` beside it (the README's commands name assets/...)."""
    (tmp_path / "assets").symlink_to(REPO / "assets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_python_snippets_run(in_a_user_folder, capsys):
    pytest.importorskip("av")
    snippets = blocks("python")
    assert len(snippets) >= 2 and "from realtime import FaceLandmarker" in snippets[0]
    assert len(snippets[0].strip().splitlines()) == 3  # the three lines
    namespace: dict = {}
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), namespace)
    faces = namespace["faces"]
    assert len(faces) == 1 and faces[0].points.shape == (68, 2)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 300 and printed[0].startswith("0 [(0, ") and printed[-1].startswith("299 [(0, ")


def commands() -> list[list[str]]:
    """The ``python -m realtime.X ...`` lines of the README's bash blocks, comments dropped."""
    found = []
    for block in blocks("bash"):
        for line in block.splitlines():
            if line.startswith("python -m realtime."):
                found.append(shlex.split(line, comments=True))
    return found


def test_the_command_lines_run_as_written(in_a_user_folder):
    pytest.importorskip("av")
    import realtime.video
    import realtime.webcam

    lines = commands()
    assert [words[2] for words in lines] == ["realtime.video", "realtime.video", "realtime.webcam"]
    for words in lines:
        if words[2] == "realtime.video":
            assert realtime.video.main(words[3:]) == 0, words
            assert (in_a_user_folder / words[words.index("-o") + 1]).is_file()
        else:  # a camera is not there to run it: its arguments must parse
            realtime.webcam.parse_args(words[3:])


def test_the_links_point_at_files_that_exist():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    missing = [t for t in targets if not t.startswith("http") and not (REPO / t).exists()]
    assert targets and missing == []


def test_the_docs_links_point_at_files_that_exist():
    """Every relative link of docs/*.md (the README's sections moved there) resolves from its page."""
    missing = []
    for page in sorted((REPO / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http") and not (page.parent / target).exists():
                missing.append(f"{page.name}: {target}")
    assert missing == []
