"""What a bug report needs: the versions of this package, of the libraries whose APIs change between
releases, and of the weights file in use (``--version`` on every command line, ``realtime.core.cliargs``).

Library versions come from the installed distributions' metadata (nothing heavy is imported: the
report prints in well under a second); the weights from the file's own metadata and its SHA-256.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

from safetensors import SafetensorError, safe_open

__version__ = "0.1.0"  # the package's one version number: pyproject.toml and realtime.__version__ read it

# (shown name, distributions that provide it, first installed wins)
LIBRARIES = (
    ("torch", ("torch",)),
    ("OpenCV", ("opencv-python-headless", "opencv-python", "opencv-contrib-python",
                "opencv-contrib-python-headless")),
    ("PyAV", ("av",)),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    ("OpenVINO", ("openvino",)),
    ("numpy", ("numpy",)),
)
SHA_CHARS = 12  # enough to tell two weights files apart in a report


def installed(*distributions: str) -> str | None:
    """The version of the first of ``distributions`` that is installed, else None."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_version() -> str:
    """This package's version (the source tree's: an older install's metadata may lag behind it)."""
    return __version__


def weights_line(path: str | Path) -> str:
    """``weights: PATH (sha256 PREFIX, KIND, N steps from SOURCE)``; a missing or unreadable file
    says so instead (a version report never fails)."""
    path = Path(path)
    if not path.is_file():
        return f"weights: {path} (not found)"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:SHA_CHARS]
    try:
        with safe_open(str(path), "np") as stored:
            meta = stored.metadata() or {}
    except (SafetensorError, OSError) as exc:
        return f"weights: {path} (sha256 {digest}; unreadable: {exc})"
    try:
        info = json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError:
        info = {}
    details = [f"sha256 {digest}", meta.get("kind", "no kind"), meta.get("format", "no format")]
    if isinstance(info, dict) and info.get("steps"):
        details.append(f"{info['steps']} updates")
    return f"weights: {path} ({', '.join(details)})"


def version_report(weights: str | Path | None) -> str:
    """The lines ``--version`` prints: package and Python, libraries, and ``weights`` (when given)."""
    libraries = ", ".join(f"{shown} {installed(*dists) or 'not installed'}" for shown, dists in LIBRARIES)
    lines = [f"rcn-realtime {package_version()} (Python {platform.python_version()}, {platform.platform()})",
             libraries]
    if weights is not None:
        lines.append(weights_line(weights))
    return "\n".join(lines)
