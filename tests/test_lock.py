"""The dependency contract (docs/install.md): requirements/lock.txt pins every package that `make test`
installs, each pin inside the bounds of pyproject.toml, and every install command of the Makefile and
CI uses it as pip constraints."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO

LOCK = REPO / "requirements" / "lock.txt"


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"requirements/lock.txt: not an exact pin: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"requirements/lock.txt pins {name} twice"
        pins[name] = match[2]
    return pins


def dev_requirements() -> list[Requirement]:
    """The requirements `make test` installs: the dependencies plus the `dev` extra, expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras, found, todo = project["optional-dependencies"], list(project["dependencies"]), ["dev"]
    seen = set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for text in extras[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "rcn-realtime":
                todo += [e for e in req.extras if e not in seen]
            else:
                found.append(text)
    return [Requirement(t) for t in found]


def test_the_lock_pins_every_requirement_of_make_test_inside_its_bounds():
    pins = locked()
    for req in dev_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in requirements/lock.txt: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"requirements/lock.txt pins {name}=={pins[name]}, outside pyproject.toml's {req}"
    assert "+" not in pins["torch"], "torch is pinned without its local label (torch==X matches X+cpu)"


def test_every_install_of_the_makefile_and_ci_uses_the_lock(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    dry = subprocess.run(["make", "-n", "-B", f"VENV={venv}", "venv", "venv-demo"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    installs = [line for line in dry.splitlines() if "pip install" in line and " -e " in line]
    assert len(installs) == 2 and all("-c requirements/lock.txt" in line for line in installs), installs
    ci = (REPO / ".ci" / "run").read_text()
    assert "make venv" in ci and "make test" in ci
    assert "CONSTRAINTS=" in ci  # the second venv: the newest allowed set, on purpose unconstrained


def test_a_venv_made_by_make_holds_the_locked_versions():
    if not (Path(sys.prefix) / ".installed-dev").is_file():
        pytest.skip("this environment was not installed by make (no .installed-dev stamp)")
    pins = locked()
    stale = []
    # one lookup per pinned name: the copy imports would load (site-packages first). Scanning every
    # distribution also finds the copies setuptools vendors (setuptools/_vendor joins sys.path once
    # setuptools is imported: packaging 26.3 there against 26.4 installed), so the test failed or
    # passed by which test imported setuptools first.
    for name, pin in pins.items():
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if version.split("+")[0] != pin:
            stale.append(f"{name} {version} (locked {pin})")
    assert not stale, f"installed versions differ from requirements/lock.txt: {', '.join(stale)}; run make venv"
