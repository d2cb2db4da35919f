"""The package as a user installs it: a wheel built from this checkout holds every module and every
shipped file, and ``python -m realtime.video`` runs from a non-editable install of it, in a folder
outside the repository, on its own package data (weights, detector models, mean face).

The wheel is built from a copy of the sources in tmp_path (setuptools would otherwise leave
``build/`` and ``*.egg-info`` in the checkout, and a stale ``build/`` can leak old files into a wheel)
with the venv's setuptools, offline (``--no-build-isolation --no-index``); it is installed with
``--no-deps --target`` and found first through PYTHONPATH, while torch and the rest come from the
test's own interpreter.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata, resources
from pathlib import Path

import cv2
import pytest

from realtime.core import assets
from conftest import REPO

SOURCES = ("pyproject.toml", "README.md", "LICENSE", "LICENSE-weights.md", "realtime", "train", "assets")


def shipped(folder: Path) -> list[str]:
    """Files under ``folder`` (relative, POSIX), bytecode caches left out."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout's working tree."""
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not a source checkout: no pyproject.toml beside tests/")
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("rcn_realtime-*.whl")
    return path


def test_the_wheel_holds_every_module_and_every_shipped_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("realtime", "train"):  # a subpackage missing from pyproject's packages list fails here
        missing = [f"{package}/{f}" for f in shipped(REPO / package) if f.endswith(".py")
                   and f"{package}/{f}" not in names]
        assert not missing, f"not in the wheel (add the package to [tool.setuptools] packages): {missing}"
    missing = [f for f in shipped(REPO / "assets") if f"realtime/_assets/{f}" not in names]
    assert not missing, f"assets/ files not in the wheel (pyproject.toml package-data): {missing}"
    assert not [n for n in names if n.startswith(("assets/", "tests/"))]  # no stray top-level folders
    assert wheel.stat().st_size < 12e6, f"the wheel is {wheel.stat().st_size / 1e6:.1f} MB"
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]\nrcn = realtime.cli.rcn:main\n" in scripts, scripts  # the one command (docs/cli.md)
    assert "[rcn.commands]\n" in scripts and "train = train.__main__:main" in scripts, scripts


def test_video_runs_from_an_installed_wheel_outside_the_repository(wheel, tmp_path, clip_frames):
    target, work = tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cv2.imwrite(str(work / "frame.png"), cv2.cvtColor(clip_frames(0)[0], cv2.COLOR_RGB2BGR))
    env = {**os.environ, "PYTHONPATH": str(target), "RCN_CACHE": str(tmp_path / "cache")}

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)

    where = python("-c", "import json, realtime, realtime.core.assets as a; "
                         "print(json.dumps([realtime.__file__, str(a.asset_dir()), str(a.LANDMARKS_68)]))")
    assert where.returncode == 0, where.stderr[-3000:]
    module, folder, weights = (Path(p) for p in json.loads(where.stdout))
    for path in (module, folder, weights):  # the install, never this checkout
        assert path.is_relative_to(target) and not path.is_relative_to(REPO), path
    assert folder == target / "realtime" / "_assets" and weights.is_file()

    run = python("-m", "realtime.video", "frame.png", "-o", "out.mp4", "--landmarks", "out.jsonl",
                 "--backend", "eager")
    assert run.returncode == 0, run.stderr[-3000:]
    (record,) = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines()]
    assert len(record["faces"]) == 1 and len(record["faces"][0]["points"]) == 68
    assert (work / "out.mp4").stat().st_size > 0
    api = python("-c", "from realtime import FaceLandmarker; from realtime.core.assets import DEMO_PHOTO; "
                       "faces = FaceLandmarker(backend='eager')(DEMO_PHOTO); print(len(faces), faces[0].points.shape)")
    assert api.returncode == 0 and api.stdout.split() == ["1", "(68,", "2)"], api.stderr[-3000:]  # the API, installed
    # what the rcn script calls: its runtime commands, and the training ones from the wheel's entry points
    console = python("-c", "import sys; from realtime.cli.rcn import main; sys.exit(main(['--help']))")
    assert console.returncode == 0 and "\n  video " in console.stdout and "\n  train " in console.stdout, console.stderr
    for command in (["video", "--help"], ["train", "export", "--help"]):
        console = python("-c", f"import sys; from realtime.cli.rcn import main; sys.exit(main({command!r}))")
        assert console.returncode == 0 and console.stdout.startswith(f"usage: rcn {' '.join(command[:-1])} "), \
            console.stderr[-3000:]


def test_a_checkout_reads_its_own_assets_folder():
    """Run from this checkout, the shipped files are the repository's own ``assets/`` (where the
    tools that remake them write); an editable install of this checkout maps ``realtime._assets``
    onto the same folder."""
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not a source checkout")
    assert assets.asset_dir() == REPO / "assets" and assets.DEMO_CLIP == REPO / "assets" / "demo.mp4"
    try:
        origin = json.loads(metadata.distribution("rcn-realtime").read_text("direct_url.json") or "{}")
    except metadata.PackageNotFoundError:
        origin = {}
    if not origin.get("dir_info", {}).get("editable") or origin.get("url") != REPO.as_uri():
        pytest.skip(f"rcn-realtime is not installed editable from {REPO}")
    assert Path(str(resources.files(assets.PACKAGE))) == REPO / "assets"
