"""Live mode's face detection on a thread of its own: ``DetectAhead``.

Why: live, the worker thread runs the whole chain of a frame, and a frame whose tracker asks for
the detector (no tracks yet, the re-detect interval, an unsure track's re-check) took the detector
on top of its landmarks: both BlazeFace models cost 11-13 ms a 640x480 frame on two cores, a
third of the worker's time on the five-person clip (``video_01``, py-spy), and most dropped frames
followed a detection frame (docs/bench/speed.md). Here the round runs beside the worker, which
carries every track on its landmarks meanwhile; a later frame takes the round's detections, from a
frame or two earlier. The tracker matches them against its tracks as usual (by IoU and centre
gap, which a frame's motion does not break); a new face's crop starts from the older box and is
cut again from its landmarks in the same frame (``FaceTracker.refine``), as on any detection frame.

Rules: ``take(frame, round)`` is called by the frame that wants detections. A finished round at
most ``max_age`` frames old is handed over (and nothing new starts: this frame's wish is served);
otherwise, when no round is running, ``round`` starts on the thread, and the frame goes on
without detections (None, as when the tracker asked for none). So a frame never waits for the
detector, and at most one round runs at a time. With nothing tracked there is nothing to carry
meanwhile, so the processor then detects in the frame that asks (the first frame of a stream shows
its faces; a face entering an empty scene is found at once), as it does for stills. A packet that
took a round's detections reports that round's time as ``timings["detect_round_ms"]`` (its
``detect_ms``, the frame's own time for detection, is about 0 then). ``reset`` forgets a finished or running round (a
new scene: the processor's ``reset``). File mode does not use this: its output must not depend on
timing, so there the detector runs in the frame that asks; so does a still (an image, a folder's
image), which starts afresh and is shown once: waiting for a later frame would show it without faces.

Only ``realtime.pipeline`` starts threads; the round itself is the processor's code
(``FrameProcessor._detection_round``), which touches only the detector and the turned search.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from realtime.detect.blazeface import Detections


class DetectAhead:
    """Detection rounds on one background thread, taken by later frames (module docstring).
    ``close`` joins the thread; a round that raised re-raises in the next ``take``."""

    def __init__(self, max_age: int = 3) -> None:
        self.max_age = max_age
        self.rounds = 0  # rounds started, for tests and reports
        self.last_round_ms = 0.0  # the duration of the round whose detections ``take`` handed over last
        self._cond = threading.Condition()
        self._job: tuple[int, int, Callable[[], Detections]] | None = None  # (frame, generation, round)
        self._done: tuple[int, Detections, float] | None = None  # (frame, detections, ms)
        self._busy = self._closed = False
        self._generation = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)
        self._thread.start()

    def take(self, frame: int, detection_round: Callable[[], Detections]) -> Detections | None:
        """Detections of a recent round for frame number ``frame`` (counted by the caller), or None
        after starting ``detection_round`` (or while one runs)."""
        with self._cond:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            done, self._done = self._done, None
            if done is not None and frame - done[0] <= self.max_age:
                self.last_round_ms = done[2]
                return done[1]
            if not self._busy and not self._closed:
                self._job, self._busy = (frame, self._generation, detection_round), True
                self.rounds += 1
                self._cond.notify_all()
            return None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._closed)
                if self._closed:
                    return
                (frame, generation, detection_round), self._job = self._job, None
            start = time.perf_counter()
            try:
                detections, error = detection_round(), None
            except BaseException as exc:  # handed to the worker by the next take
                detections, error = None, exc
            ms = (time.perf_counter() - start) * 1e3
            with self._cond:
                self._busy = False
                if generation == self._generation:
                    self._error = error
                    self._done = None if detections is None else (frame, detections, ms)

    def reset(self) -> None:
        """Forget the finished round, and the running one's result when it ends."""
        with self._cond:
            self._generation += 1
            self._done = None

    def close(self) -> None:
        """Stop the thread (a running round ends first) and join it. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
