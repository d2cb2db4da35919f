"""Where every shipped file and every cache folder is: the one module that knows these paths.

The shipped files (landmark weights, the BlazeFace detector models, the 3D mean face, the demo
clip and its truth, the astronaut's labels) live in the repository's top-level ``assets/`` folder.
``pyproject.toml`` maps that folder onto the package ``realtime._assets``, so a wheel or a
``pip install .`` carries them as package data, read here through ``importlib.resources``:

- installed (a wheel, ``pip install .``): ``site-packages/realtime/_assets/``;
- a source checkout (an editable install, or ``PYTHONPATH=.``): the checkout's own ``assets/``,
  which is also where the developer tools that remake assets (``train.faces68``,
  ``train.tools.make_demo_clip``, ``train.tools.make_mean_face``, ``train.tools.make_blazeface_weights``) write.

Caches (never shipped; safe to delete) are under ``$RCN_CACHE`` when it is set, else under
``~/.cache``: ``backend_cache_dir()`` (exported ONNX, int8 models, ``auto`` decisions) and
``synthetic_cache_dir()`` (the synthetic benchmark's arrays).

``python -m realtime.core.assets`` prints each of these paths (e.g. to find the demo clip in an install).
"""
from __future__ import annotations

import argparse
import os
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path

from realtime.core.cliargs import Parser
from realtime.core.errors import UserError, run_command

PACKAGE = "realtime._assets"
CACHE_ENV = "RCN_CACHE"


@lru_cache(maxsize=1)
def asset_dir() -> Path:
    """The folder holding the shipped files (module docstring).

    A checkout is recognised by ``pyproject.toml`` and ``assets/__init__.py`` beside this package
    and always reads its own ``assets/``, also when ``realtime._assets`` resolves elsewhere (an
    editable install made from another clone) or not at all (``PYTHONPATH=.``, or an editable
    install that predates the mapping). Anywhere else: the installed package data."""
    checkout = Path(__file__).resolve().parents[2]  # realtime/core/assets.py -> the checkout
    if (checkout / "pyproject.toml").is_file() and (checkout / "assets" / "__init__.py").is_file():
        return checkout / "assets"
    try:
        folder = resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise ImportError(f"{PACKAGE} (the shipped weights and models) is missing: reinstall rcn-realtime") from None
    if not isinstance(folder, Path):  # inside a zip: cv2, safetensors and PyAV open files by name
        raise ImportError(f"{PACKAGE} is not a folder on disk ({folder}): install rcn-realtime with pip")
    return folder


def asset(*parts: str) -> Path:
    """A shipped file, e.g. ``asset("blazeface", "LICENSE")``."""
    return asset_dir().joinpath(*parts)


# The shipped files, by role (assets/README.md describes each).
LANDMARKS_68 = asset("rcn68_faces.safetensors")      # the default model of every CLI
LANDMARKS_68_ONNX = asset("rcn68_faces.onnx")        # the same network + soft-argmax, for other runtimes
LANDMARKS_68_FAST = asset("rcn68_fast.safetensors")  # a narrower student of it: faster, less accurate
TEACHER_68 = asset("rcn68_teacher.safetensors")      # what train.faces68 starts from
SYNTH_5 = asset("rcn_mtfl_synth.safetensors")        # the 5-point model of the synthetic benchmark
MEAN_FACE = asset("mean_face_68.npy")                # (68, 3) mm, for head pose
DEMO_CLIP = asset("demo.mp4")                        # the astronaut clip (also int8 calibration)
DEMO_TRUTH = asset("demo_truth.json")                # its 68 points per frame
DEMO_PHOTO = asset("astronaut.jpg")                  # the clip's source portrait, the API's example photo
ASTRONAUT_PTS = asset("astronaut_68.pts")            # the astronaut's labels (+ .teacher.json beside)
BLAZEFACE_DIR = asset("blazeface")                   # the detector: .tflite (OpenCV) and .safetensors (torch)


# The bundled landmark models by name: ``--weights fast`` / ``FaceLandmarker(weights="fast")``.
BUNDLED_WEIGHTS = {"accurate": LANDMARKS_68, "fast": LANDMARKS_68_FAST}
WEIGHTS_HELP = ("landmark model: a .safetensors file, or a bundled one by name: accurate (the default) or fast "
                "(a narrower student: faster, less accurate; docs/model68.md)")


def weights_path(given: str | Path) -> Path:
    """A bundled model's file for its name (``BUNDLED_WEIGHTS``); any other value is a path to a
    weights file, returned as given (a file named like a bundled model is reached as ``./fast``)."""
    return BUNDLED_WEIGHTS.get(given, Path(given)) if isinstance(given, str) else Path(given)


def cache_root(default: str) -> Path:
    """``$RCN_CACHE`` if set, else ``~/.cache/<default>``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / default


def backend_cache_dir() -> Path:
    """Exported models and ``auto`` decisions (``realtime.backends``): ``$RCN_CACHE/backends``,
    else ``~/.cache/rcn-realtime/backends``."""
    return cache_root("rcn-realtime") / "backends"


def synthetic_cache_dir() -> Path:
    """The synthetic benchmark's rendered arrays (``train.data.synthetic``): ``$RCN_CACHE``, else ``~/.cache/rcn``."""
    return cache_root("rcn")


def main(argv: list[str] | None = None) -> int:
    """``python -m realtime.core.assets [NAME]``: every shipped file and cache folder, or one file's path."""

    p = Parser(prog="python -m realtime.core.assets", description="Where the shipped files (weights, "
               "detector models, mean face, demo clip) and the cache folders are.")
    p.add_argument("name", nargs="?", help="print only this shipped file's path, e.g. demo.mp4 or blazeface/LICENSE "
                   "(default: list every file and cache folder)")

    def run(args: argparse.Namespace) -> int:
        if args.name:
            path = asset(*args.name.split("/"))
            if not path.is_file():
                raise UserError(f"no shipped file {args.name!r} in {asset_dir()}")
            print(path)
            return 0
        print(f"assets   {asset_dir()}")
        for path in sorted(p for p in asset_dir().rglob("*") if p.is_file() and "__" not in p.as_posix()):
            print(f"         {path.relative_to(asset_dir()).as_posix()}")
        print(f"cache    {backend_cache_dir()}  (exported and int8 models, auto decisions)")
        print(f"cache    {synthetic_cache_dir()}  (the synthetic benchmark)")
        return 0

    return run_command(p.parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
