"""The one console command (``realtime/cli/rcn.py``, docs/cli.md): ``rcn COMMAND ...`` runs the
command's own ``main`` (the same records as ``python -m``), lists every command with one line,
names each command as typed, reports mistakes in one line with exit status 2, and reaches the
training commands through the ``rcn.commands`` entry points only (the wheel's metadata:
tests/test_install.py)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import entry_points

import pytest

from conftest import REPO
from realtime.cli import rcn
from realtime.core.assets import DEMO_PHOTO, LANDMARKS_68
from realtime.video import main as video_main

TRAINING = {"train", "faces68", "reproduce", "compare", "teacher"}


def test_pyproject_installs_rcn_and_registers_the_training_commands_as_entry_points():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"rcn": "realtime.cli.rcn:main"}
    registered = project["entry-points"][rcn.GROUP]
    assert set(registered) == TRAINING and not set(registered) & set(rcn.COMMANDS)
    assert all(target.startswith("train.") for target in registered.values())
    # the runtime names only its own modules: the training commands come from the metadata
    assert all(target.startswith("realtime.") for target in rcn.COMMANDS.values())
    installed = {ep.name: ep.value for ep in entry_points(group=rcn.GROUP)}
    assert installed == registered, "the installed metadata is stale: run `make venv` (pip install -e .)"


def test_help_lists_every_command_with_one_line_each(capsys):
    assert rcn.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = out.split("commands:\n")[1].split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line.split(None, 1)[1] for line in listed}
    assert set(rows) == set(rcn.COMMANDS) | TRAINING
    assert rows["video"] == "Landmarks for a recorded video, an image or a folder of images, headless"
    assert rows["train"].endswith("{fit,evaluate,export,synth,adapt,bench}")
    assert all(len(text) > 20 and "``" not in text and "python -m" not in text for text in rows.values()), rows


def test_help_imports_no_command_and_no_torch():
    code = ("import sys; from realtime.cli.rcn import main; main(['--help']); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('train', 'realtime.video'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv, says", [(["vidoe"], "unknown command 'vidoe'"),
                                        (["--bogus"], "unknown option '--bogus'")])
def test_an_unknown_command_is_one_line_and_status_2(argv, says, capsys):
    assert rcn.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {says}; the commands are video, webcam,") and "'rcn --help'" in captured.err


def test_no_command_prints_the_list_and_status_2(capsys):
    assert rcn.main([]) == 2
    assert "commands:" in capsys.readouterr().err


def test_version_reports_the_package_and_the_weights(capsys):
    with pytest.raises(SystemExit) as done:
        rcn.main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("rcn-realtime ") and f"weights: {LANDMARKS_68} (sha256 " in out


def test_a_command_runs_under_its_rcn_name_and_its_python_m_name_is_back_after(capsys):
    with pytest.raises(SystemExit):
        rcn.main(["video", "--help"])
    assert capsys.readouterr().out.startswith("usage: rcn video ")
    assert rcn.main(["video", "in.mp4"]) == 2
    assert capsys.readouterr().err == ("error: the following arguments are required: -o/--output "
                                       "(see 'rcn video --help')\n")
    with pytest.raises(SystemExit):
        rcn.main(["train", "fit", "--help"])
    assert capsys.readouterr().out.startswith("usage: rcn train fit ")
    assert video_main(["in.mp4"]) == 2  # the same parser, called as python -m, has its own name again
    assert "(see 'python -m realtime.video --help')" in capsys.readouterr().err


def test_rcn_video_writes_the_records_python_m_writes(tmp_path):
    pytest.importorskip("av")
    records = []
    for name, main in (("rcn", lambda argv: rcn.main(["video", *argv])), ("python_m", video_main)):
        out = tmp_path / name
        assert main([str(DEMO_PHOTO), "-o", str(out.with_suffix(".mp4")), "--landmarks", str(out.with_suffix(".csv")),
                     "--backend", "eager"]) == 0
        records.append(out.with_suffix(".csv").read_text())
    assert records[0] == records[1] and records[0].count("\n") == 2  # header + the one face
