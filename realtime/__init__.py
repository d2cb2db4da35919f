"""Real-time facial landmarks: RCN models, decoders, shipped weights and the live pipeline.

The front door is ``FaceLandmarker`` (``realtime.api``)::

    from realtime import FaceLandmarker
    landmarker = FaceLandmarker()                 # the bundled 68-point model
    faces = landmarker("assets/astronaut.jpg")    # box, points, scores, pose, track_id; .to_dict()

It is imported on first use (``__getattr__``), so ``import realtime`` stays cheap (numpy, no
torch) for the modules that need none of it. The results (``FaceResult``, ``FramePacket``,
``HeadPose``) and the errors (``UserError``, a ``ValueError``; ``InputNotFoundError``, also a
``FileNotFoundError``) are here too.

Coordinate convention, used everywhere in this project: points are (x, y) in pixels, x before y,
with pixel centres at integer coordinates (OpenCV's convention: pixel (i, j) covers
[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)). Boxes are (x0, y0, x1, y1).
"""
from realtime.core.signals import install_startup_hook as _install_startup_hook

_install_startup_hook()  # `python -m realtime.X`: Ctrl-C during start-up prints one line, not a traceback

# numpy before torch: torch's C extension imports numpy from C and swallows any exception raised in
# there, so a Ctrl-C landing inside that import used to be lost and left numpy half-loaded (the next
# `import numpy` then failed with "cannot load module more than once per process"). Imported here
# first, a Ctrl-C during it is an ordinary KeyboardInterrupt.
import numpy as _numpy  # noqa: E402,F401

from realtime.core.errors import InputNotFoundError, UserError  # noqa: E402
from realtime.core.versions import __version__  # noqa: E402
from realtime.core.packet import FaceResult, FramePacket, HeadPose  # noqa: E402

__all__ = ["FaceLandmarker", "FaceResult", "FramePacket", "HeadPose", "InputNotFoundError", "UserError", "__version__"]


def __getattr__(name: str) -> object:
    """``realtime.FaceLandmarker``, imported with torch on first use (module docstring)."""
    if name == "FaceLandmarker":
        from realtime.api import FaceLandmarker

        return FaceLandmarker
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
