"""Shared by the CLI tests (importable because pytest puts ``tests/`` on ``sys.path``)."""
from __future__ import annotations


def one_error_line(capsys) -> str:
    """What the CLI printed to stderr: exactly one ``error: ...`` line and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def default_signals() -> None:
    """``preexec_fn`` for a CLI started as a process whose stop signals a test sends: Ctrl-C,
    SIGTERM and SIGHUP back at their defaults. CI may run the tests as a background job (SIGINT
    ignored) or under nohup (SIGHUP ignored), and the commands keep an ignored signal ignored."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
