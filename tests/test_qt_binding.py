"""The Qt binding keeps Python's ``None`` alive: PySide6 6.12.0 took a reference to ``None`` away
on every Qt call returning nothing, and the live window (thousands of such calls a second)
aborted with 'deallocating None' after ~20 s. pyproject pins the gui extra below 6.12."""
import subprocess
import sys

import pytest

pytest.importorskip("PySide6")

SCRIPT = """
import sys
from PySide6.QtCore import QPointF
point = QPointF()
before = sys.getrefcount(None)
for _ in range(5000):
    point.setX(1.0)
print(sys.getrefcount(None) - before)
"""


def test_qt_calls_returning_nothing_do_not_leak_none_references():
    # a subprocess: on a broken binding enough calls abort the interpreter
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-300:]
    assert abs(int(out.stdout.strip())) < 100, f"None lost {out.stdout.strip()} references over 5000 Qt calls"
