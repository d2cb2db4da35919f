"""The lossless runners: the caller's thread processes, a capture thread per input decodes
(``realtime.pipeline.capture_thread``).

- ``run_file`` (lossless, in order; ``file_packets`` is the same as a generator): a capture thread decodes into a bounded blocking queue; the
  caller's thread processes every frame in order and hands each packet to ``on_packet``. Nothing
  is dropped: processed == decoded, always. A source error (a truncated video) is raised after
  every frame decoded before it has been processed. Ctrl-C in the caller ends the capture thread.
- ``run_streams`` (several inputs at once, each lossless and in order): a capture thread per input;
  each step processes the next frame of every input together (``process_together``), so the
  detector and the landmark network see one batch across the inputs (what keeps a GPU busy when
  one stream cannot). Each input keeps its own ``FrameProcessor`` (tracks, filters); the records
  equal those of processing each input alone.

File mode runs the landmarker one frame at a time even though ``Landmarker.batch`` can batch
across frames: with tracking, frame t + 1's crops come from frame t's landmarks.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Sequence

from realtime.io.capture import CapturedFrame, Source
from realtime.core.packet import FramePacket
from realtime.pipeline.capture_thread import CaptureThread, finish_packet
from realtime.pipeline.config import RunStats
from realtime.pipeline.pooling import pools_landmarks, process_together
from realtime.pipeline.processor import FrameProcessor


def file_packets(source: Source, process: Callable[[CapturedFrame], FramePacket], queue_size: int = 8,
                 stats: RunStats | None = None) -> Iterator[FramePacket]:
    """Every frame of ``source`` processed, in order, as a generator: ``run_file``'s guarantees
    for callers that pull (``FaceLandmarker.track``). Decoding runs on the capture thread, ahead
    of the caller by up to ``queue_size`` frames, so it overlaps the processing (PyAV decodes
    without the GIL): on the bundled clip decoding was a third of the API's time on one thread.
    ``stats`` (optional) receives the counts. Closing the generator early stops the source, joins
    its thread and closes the source; a source error is raised after the frames before it."""
    stats = stats if stats is not None else RunStats()
    start = time.monotonic()
    capture = CaptureThread(source, queue_size, stats)
    try:
        while (item := capture.get()) is not None:
            frame, t_arrival, capture_ms = item
            t_start = time.monotonic()
            packet = finish_packet(process(frame), t_arrival, capture_ms, t_start, 0)
            stats.latencies_ms.append(packet.timings["latency_ms"])
            yield packet
            stats.processed += 1
    finally:
        capture.close()
        stats.wall_s = time.monotonic() - start
    if capture.error is not None:
        raise capture.error


def run_file(source: Source, process: Callable[[CapturedFrame], FramePacket],
             on_packet: Callable[[FramePacket], None], queue_size: int = 8) -> RunStats:
    """Process every frame of ``source`` in order (module docstring); returns the counts.

    The source is stopped, its thread joined and the source closed on return, on error and on
    KeyboardInterrupt alike. A source error is re-raised after the frames before it.
    """
    stats = RunStats()
    with contextlib.closing(file_packets(source, process, queue_size, stats)) as packets:
        for packet in packets:
            on_packet(packet)
    return stats


def run_streams(sources: Sequence[Source], processors: Sequence[FrameProcessor],
                on_packet: Callable[[int, FramePacket], None],
                on_end: Callable[[int, BaseException | None], None] | None = None,
                queue_size: int = 8, batch_landmarks: bool | None = None) -> list[RunStats]:
    """Several inputs at once, each lossless and in order (``run_file``'s guarantees per stream):
    one capture thread per source; each step takes the next frame of every stream that still has
    one and processes them together (``process_together``: one batched detector call, one batched
    landmark call), then hands packet by packet to ``on_packet(stream index, packet)``.
    ``processors[i]`` keeps stream i's tracks and filters; they share one landmarker and detector.

    A stream that ends calls ``on_end(i, None)``; one whose source fails (a truncated file) ends
    there with ``on_end(i, error)`` while the others go on, and the first such error is raised
    after every stream has ended. Every source is closed on return, error and KeyboardInterrupt.
    ``batch_landmarks`` (``process_together``) defaults to ``pools_landmarks``: on a GPU.
    """
    if batch_landmarks is None:
        batch_landmarks = bool(processors) and pools_landmarks(processors[0].landmarker)
    if len(sources) != len(processors):
        raise ValueError("run_streams needs one processor per source")
    stats = [RunStats() for _ in sources]
    start = time.monotonic()
    captures: list[CaptureThread] = []
    errors: list[BaseException] = []
    try:
        for source, st in zip(sources, stats):
            captures.append(CaptureThread(source, queue_size, st))
        active = list(range(len(captures)))
        while active:
            batch = []
            for i in list(active):
                item = captures[i].get()
                if item is None:
                    active.remove(i)
                    stats[i].wall_s = time.monotonic() - start
                    if captures[i].error is not None:
                        errors.append(captures[i].error)
                    if on_end is not None:
                        on_end(i, captures[i].error)
                    continue
                batch.append((i, item))
            if not batch:
                continue
            t_start = time.monotonic()
            packets = process_together([processors[i] for i, _ in batch], [item[0] for _, item in batch],
                                       batch_landmarks)
            for (i, (_, t_arrival, capture_ms)), packet in zip(batch, packets):
                packet = finish_packet(packet, t_arrival, capture_ms, t_start, 0)
                stats[i].latencies_ms.append(packet.timings["latency_ms"])
                on_packet(i, packet)
                stats[i].processed += 1
    finally:
        for capture in captures:
            capture.close()
        for st in stats:
            st.wall_s = st.wall_s or time.monotonic() - start
    if errors:
        raise errors[0]
    return stats

