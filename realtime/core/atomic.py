"""Atomic file output: write to a temporary file beside the target, then rename over it.

An interrupted writer leaves either the previous file or nothing, never a half-written one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    The temporary name keeps the target's suffix so libraries that pick a format by extension
    (matplotlib, cv2.imwrite, safetensors) still work. On an exception the temporary is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(out: str | Path) -> Iterator[Path]:
    """Yield an empty scratch folder beside ``out`` (``.NAME.building``, a stale one from an
    interrupted run removed first); on success it replaces ``out`` (``replace_folder``), on an
    exception it is removed and ``out`` stays as it was: the folder twin of ``atomic_path``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / f".{out.name}.building"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        yield scratch
        replace_folder(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def replace_folder(new: str | Path, out: str | Path) -> None:
    """Move the finished folder ``new`` to ``out`` (both on one file system); an old ``out`` is
    removed only after the swap, so an interruption leaves the old folder or the new one."""
    new, out = Path(new), Path(out)
    if not out.exists():
        new.rename(out)
        return
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    out.rename(old)
    new.rename(out)
    shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def json_text(doc: dict) -> str:
    """Indented JSON with lists of numbers kept on one line (the style of every JSON file we write
    by hand-readable convention: label sidecars, golden points, reports)."""
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s*([-0-9.e, \n]+?)\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
