"""Real-time facial landmarks: RCN models, decoders, shipped weights and the live pipeline.

Coordinate convention, used everywhere in this project: points are (x, y) in pixels, x before y,
with pixel centres at integer coordinates (OpenCV's convention: pixel (i, j) covers
[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)). Boxes are (x0, y0, x1, y1).
"""
__version__ = "0.1.0"

from realtime.core.signals import install_startup_hook as _install_startup_hook

_install_startup_hook()  # `python -m realtime.X`: Ctrl-C during start-up prints one line, not a traceback

# numpy before torch: torch's C extension imports numpy from C and swallows any exception raised in
# there, so a Ctrl-C landing inside that import used to be lost and left numpy half-loaded (the next
# `import numpy` then failed with "cannot load module more than once per process"). Imported here
# first, a Ctrl-C during it is an ordinary KeyboardInterrupt.
import numpy as _numpy  # noqa: E402,F401
