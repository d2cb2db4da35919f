"""The capture thread of the file runners: a source decoded on its own thread into a bounded
blocking queue (lossless: ``put`` waits while the queue is full), and the per-frame timing every
runner adds (``timed_frames``: arrival and capture time; ``finish_packet``: ``wait_ms`` and
``latency_ms``, see ``realtime.pipeline.processor`` for the timings' meaning).
"""
from __future__ import annotations

import threading
import time
from typing import Iterator

from realtime.io.capture import CapturedFrame, Source
from realtime.core.packet import FramePacket
from realtime.pipeline.config import RunStats


def finish_packet(packet: FramePacket, t_arrival: float, capture_ms: float, t_start: float,
                  dropped: int) -> FramePacket:
    """``packet`` with the runner's timings around the processor's (``capture_ms``, ``wait_ms``,
    ``latency_ms``) and its count of frames dropped so far."""
    packet.timings = {"capture_ms": capture_ms, "wait_ms": (t_start - t_arrival) * 1e3, **packet.timings,
                      "latency_ms": (time.monotonic() - t_arrival) * 1e3}
    packet.dropped = dropped
    return packet


def timed_frames(source: Source) -> Iterator[tuple[CapturedFrame, float, float]]:
    """(frame, t_arrival monotonic seconds, capture_ms) for each frame of ``source``."""
    iterator, clock = iter(source), time.perf_counter()
    for frame in iterator:
        now = time.perf_counter()
        yield frame, time.monotonic(), (now - clock) * 1e3
        clock = time.perf_counter()


class BoundedQueue:
    """A closable FIFO of at most ``maxsize`` items: ``put`` blocks while full, ``get`` while
    empty; both return at once after ``close`` (put -> False, get -> None once drained)."""

    def __init__(self, maxsize: int) -> None:
        self._items: list = []
        self._maxsize, self._closed = max(1, maxsize), False
        self._cond = threading.Condition()

    def put(self, item: object) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: len(self._items) < self._maxsize or self._closed)
            if self._closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self) -> object | None:
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed)
            item = self._items.pop(0) if self._items else None
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class CaptureThread:
    """A capture thread decoding ``source`` into a bounded blocking queue (lossless). ``get`` ->
    (frame, t_arrival, capture_ms), or None at the end; a source error is kept in ``error`` for
    the caller's thread. ``close`` stops the source, joins the thread and closes the source."""

    def __init__(self, source: Source, queue_size: int, stats: RunStats) -> None:
        self.source, self.stats, self.error = source, stats, None
        self.queue = BoundedQueue(queue_size)
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in timed_frames(self.source):
                if not self.queue.put(item):
                    return
                self.stats.decoded += 1
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            self.queue.close()

    def get(self) -> tuple[CapturedFrame, float, float] | None:
        return self.queue.get()  # type: ignore[return-value]

    def close(self) -> None:
        self.source.stop()
        self.queue.close()
        self.thread.join()
        self.source.close()

