"""The writer thread of the video command: a frame's overlay drawing, video encoding and record
writing run on a thread of their own, in order, while the caller's thread processes the next frame.

Why: on the bundled clip, drawing, encoding (libx264) and writing took 7.6 of the 12.0 ms a frame
cost when done after each frame on the processing thread. OpenCV's drawing and PyAV's encoding
release the GIL, so on a second core they overlap the next frame's detection and landmarks.

``OrderedWriter.submit(call)`` queues a call (at most ``maxsize`` waiting: the caller blocks, so
memory stays bounded, as the capture side's queue does); the thread runs the calls one after
another in submission order, so frames reach the files in order and each frame's video frame and
record are written by one call, together. ``finish`` waits for every queued call (the outputs can
then be closed: all frames written); ``stop`` drops the calls still waiting, lets the one running
end and joins (the outputs can then be aborted). A call that raises stops the writing: later
calls are dropped, and the error is raised on the caller's thread by the next ``submit`` or by
``finish``. Stop signals reach only the main thread, so a Ctrl-C can no longer land inside the
encoder; the command finishes what was queued and closes its outputs (``realtime.video``).
"""
from __future__ import annotations

import threading
from typing import Callable

from realtime.pipeline.capture_thread import BoundedQueue


class OrderedWriter:
    """Runs submitted calls one after another on one thread, in order (module docstring)."""

    def __init__(self, maxsize: int = 4, name: str = "writer") -> None:
        self.queue = BoundedQueue(maxsize)
        self.error: BaseException | None = None
        self._dropping = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (call := self.queue.get()) is not None:
            if self._dropping:
                continue
            try:
                call()  # type: ignore[operator]
            except BaseException as exc:  # handed to the caller's thread
                self.error, self._dropping = exc, True

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def submit(self, call: Callable[[], None]) -> None:
        """Queue ``call``, waiting while ``maxsize`` calls wait; raises a failed call's error."""
        self._raise()
        if not self.queue.put(call):
            raise RuntimeError("the writer thread was stopped")

    def finish(self) -> None:
        """Run every queued call, join the thread; raises a failed call's error."""
        self.queue.close()
        self.thread.join()
        self._raise()

    def stop(self) -> None:
        """Drop the calls still waiting, let the running one end, join. Idempotent; raises nothing."""
        self._dropping = True
        self.queue.close()
        self.thread.join()
