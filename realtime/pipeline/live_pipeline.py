"""The live runner, newest frame wins: ``LivePipeline``.

Capture thread -> ``LatestMailbox`` (overwrites counted as drops) -> worker thread ->
``LatestMailbox`` of results. The worker takes a new frame only after the consumer took the
previous result (MediaPipe's flow limiter: one in flight, one waiting), so frames are dropped only
at the entrance and the result slot never overwrites. When ``process`` is a ``FrameProcessor`` (or
wraps one as ``.processor``, like ``LiveTuner``), its detection rounds run on a third thread while
the pipeline runs (``realtime.pipeline.detect_ahead``; ``detect_ahead=False`` keeps them in the
frame that asks). Consumers must therefore take results
through ``LivePipeline.get`` (or iterate it), which releases the worker. ``realtime.pipeline.live``
tunes the processor while it runs.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from realtime.io.capture import CapturedFrame, Source
from realtime.core.packet import FramePacket
from realtime.pipeline.capture_thread import finish_packet, timed_frames
from realtime.pipeline.config import RunStats
from realtime.pipeline.detect_ahead import DetectAhead
from realtime.pipeline.mailbox import LatestMailbox, MailboxClosed
from realtime.pipeline.processor import FrameProcessor


class LivePipeline:
    """Newest-frame-wins processing (module docstring). Use as a context manager, or call
    ``start`` and ``stop``; pull results with ``get`` or by iterating."""

    def __init__(self, source: Source, process: Callable[[CapturedFrame], FramePacket],
                 detect_ahead: bool = True) -> None:
        self.source, self.process = source, process
        target = getattr(process, "processor", process)
        self._processor = target if detect_ahead and isinstance(target, FrameProcessor) else None
        self.detect_ahead: DetectAhead | None = None
        self.entrance: LatestMailbox = LatestMailbox()
        self.results: LatestMailbox[FramePacket] = LatestMailbox()
        self._taken, self._stop = threading.Event(), threading.Event()
        self._taken.set()
        self.error: BaseException | None = None
        self.stats = RunStats()
        self._threads = [threading.Thread(target=self._capture, name="capture", daemon=True),
                         threading.Thread(target=self._work, name="worker", daemon=True)]

    def start(self) -> "LivePipeline":
        self._start = time.monotonic()
        if self._processor is not None and self._processor.detect_ahead is None:
            self.detect_ahead = self._processor.detect_ahead = DetectAhead()
        for thread in self._threads:
            thread.start()
        return self

    def _capture(self) -> None:
        try:
            for item in timed_frames(self.source):
                if self._stop.is_set():
                    break
                self.entrance.put(item)
                self.stats.decoded += 1
        except BaseException as exc:
            self.error = self.error or exc
        finally:
            self.entrance.close()

    def _work(self) -> None:
        try:
            while self._taken.wait() and not self._stop.is_set():
                try:
                    frame, t_arrival, capture_ms = self.entrance.get()
                except MailboxClosed:
                    break
                t_start = time.monotonic()
                packet = finish_packet(self.process(frame), t_arrival, capture_ms, t_start, self.entrance.dropped)
                self._taken.clear()
                if self._stop.is_set():  # stop() set _taken before the clear: do not wait on it again
                    break
                self.results.put(packet)
                self.stats.processed += 1
        except BaseException as exc:
            self.error = self.error or exc
            self.source.stop()
        finally:
            self.results.close()

    def get(self, timeout_s: float | None = None) -> FramePacket | None:
        """The newest result, waiting up to ``timeout_s`` (None: forever); None on timeout.

        Raises the pipeline's error if a thread failed, ``MailboxClosed`` at the end of input.
        """
        try:
            packet = self.results.get(timeout_s)
        except MailboxClosed:
            if self.error is not None:
                raise self.error
            raise
        if packet is not None:
            self.stats.latencies_ms.append(packet.timings["latency_ms"])
            self._taken.set()
        return packet

    def __iter__(self) -> Iterator[FramePacket]:
        while True:
            try:
                packet = self.get()
            except MailboxClosed:
                return
            if packet is not None:
                yield packet

    def stop(self) -> RunStats:
        """Stop capture, join both threads, release the source; returns the counts. Idempotent."""
        self._stop.set()
        self.source.stop()
        self._taken.set()
        self.entrance.close()
        for thread in self._threads:
            if thread.is_alive() or thread.ident is not None:
                thread.join()
        self.results.close()
        if self.detect_ahead is not None:
            self.detect_ahead.close()
            self._processor.detect_ahead = None
        self.source.close()
        self.stats.dropped = self.entrance.dropped
        self.stats.wall_s = time.monotonic() - getattr(self, "_start", time.monotonic())
        return self.stats

    def __enter__(self) -> "LivePipeline":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
