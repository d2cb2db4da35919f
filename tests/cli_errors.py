"""Shared by the CLI tests (importable because pytest puts ``tests/`` on ``sys.path``)."""
from __future__ import annotations


def one_error_line(capsys) -> str:
    """What the CLI printed to stderr: exactly one ``error: ...`` line and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
