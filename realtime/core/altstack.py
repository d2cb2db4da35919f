"""A signal stack that stays mapped: the guard against a crash on Ctrl-C after OpenVINO.

Why (issue 23): OpenVINO's CPU plugin (measured with 2026.4.1), when an ``ov.Core`` first compiles
for the CPU, gives the calling thread an alternate signal stack of its own (``sigaltstack``, an
mmapped 11 KiB block), remembering the one it replaced; when that Core is released, it puts the
remembered stack back only if its own is still the thread's, then unmaps its own. Two Cores released
in the order they were made (the second "restores" the first's unmapped block), or a Core released
by another thread (the creating thread keeps the unmapped block), leave the thread pointing at
unmapped memory. CPython installs every Python signal handler with ``SA_ONSTACK``, so the next
Ctrl-C, SIGTERM or SIGHUP handled there makes the kernel write the signal frame into that memory: a
segmentation fault (exit 139, and no traceback: faulthandler's handler runs on the same stack).
The test suite met it as a self-sent SIGINT in ``tests/test_loop.py``; a user meets it as Ctrl-C
during ``train fit`` or a video run after an OpenVINO backend was built and dropped.

Two guards, both no-ops outside Linux:

- ``kept()`` around code that makes OpenVINO Cores (the backends): the thread leaves it with the
  signal stack it came in with, so OpenVINO's block is never the one in use when it is unmapped.
- ``ensure()``, called by ``realtime.core.signals.handling`` before it installs handlers: a stack
  that lies in unmapped memory (left by any library) is replaced by one this module owns.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import mmap
import sys
import threading
from typing import Iterator

log = logging.getLogger(__name__)

STACK_BYTES = 1 << 16  # ours: room for the largest signal frame (AMX state is ~11 KiB) and the handler
_SS_DISABLE = 2  # Linux's flag for "no alternate stack"


class _StackT(ctypes.Structure):
    """``stack_t`` on Linux."""
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_owned: dict[int, ctypes.Array] = {}  # thread id -> the stack we gave it (never freed: a thread may still use it)


def current() -> tuple[int, int, int] | None:
    """The calling thread's alternate signal stack as (address, size, flags), None outside Linux."""
    if _libc is None:
        return None
    stack = _StackT()
    if _libc.sigaltstack(None, ctypes.byref(stack)) != 0:
        return None
    return stack.ss_sp or 0, stack.ss_size, stack.ss_flags


def _set(address: int, size: int, flags: int) -> bool:
    stack = _StackT(address, flags, size)
    return _libc.sigaltstack(ctypes.byref(stack), None) == 0


def is_mapped(address: int, size: int) -> bool:
    """Whether every page of [address, address + size) is mapped (``mincore`` fails on a hole)."""
    start = address - address % mmap.PAGESIZE
    length = address + size - start
    pages = (ctypes.c_ubyte * (-(-length // mmap.PAGESIZE)))()
    return _libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(length), pages) == 0


def _install_owned() -> None:
    buffer = _owned.get(threading.get_ident())
    if buffer is None:
        buffer = _owned[threading.get_ident()] = ctypes.create_string_buffer(STACK_BYTES)
    if not _set(ctypes.addressof(buffer), STACK_BYTES, 0):
        raise OSError(ctypes.get_errno(), "sigaltstack: cannot install a signal stack")


def ensure() -> bool:
    """Replace the calling thread's alternate signal stack by ours when it lies in unmapped memory
    (see module); True when it did."""
    stack = current()
    if stack is None or stack[2] & _SS_DISABLE or is_mapped(stack[0], stack[1]):
        return False
    _install_owned()
    log.debug("the signal stack at %#x was unmapped (left by a library): replaced", stack[0])
    return True


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """While inside, a library may change the thread's signal stack; on the way out the thread gets
    back the one it came in with (or ours, when the kernel refuses that one: too small for a signal
    frame that has since grown, e.g. once AMX is enabled)."""
    before = current()
    try:
        yield
    finally:
        if before is not None and current() != before:
            address, size, flags = before
            if not _set(address, size, flags):
                _install_owned()
