"""The pyqtgraph window and its items: the only sub-package that imports Qt.

``overlay`` and ``overlay_items`` import Qt (the ``gui`` extra) at their top; this package's own
module imports it only inside ``check_qt``, so a command line can ask whether Qt can start, and say
why not in one line, before it imports the window.
"""
from __future__ import annotations

import os
import subprocess
import sys

from realtime.core.errors import UserError

QT_HELP = ("without a display, set QT_QPA_PLATFORM=offscreen (no window; see --screenshot-after), or start a "
           "virtual display: Xvfb :99 -screen 0 1280x1024x24 & and DISPLAY=:99 (Debian packages in docs/webcam.md)")


def check_qt() -> None:
    """UserError, in one line, when Qt cannot start here (no PySide6, no display, missing libraries).

    Qt aborts the whole process when its platform plugin fails, so the check runs in a child.
    """
    try:
        import pyqtgraph  # noqa: F401
        import PySide6  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the overlay needs the gui extra ({exc.name} is missing): pip install -e '.[gui]'") from None
    probe = "import sys; from PySide6.QtGui import QGuiApplication; QGuiApplication(sys.argv[:1])"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise UserError(f"Qt did not start within 60 s; {QT_HELP}") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if "could not connect" in line or "cannot" in line.lower()),
                      lines[0] if lines else f"exit status {result.returncode}")
        platform = os.environ.get("QT_QPA_PLATFORM") or "unset"
        raise UserError(f"Qt cannot open a window (QT_QPA_PLATFORM={platform}: {reason}); {QT_HELP}")
