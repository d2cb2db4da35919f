"""Stream pooling: one frame of each of several streams through their own ``FrameProcessor``s with
the model calls pooled (one detector batch, one landmark batch), which is what keeps a GPU busy when
one stream cannot. ``realtime.pipeline.runners.run_streams`` drives it; the records equal those of
processing each input alone (``process_together``'s ``batch_landmarks``).
"""
from __future__ import annotations

from typing import Sequence

from realtime.io.capture import CapturedFrame
from realtime.core.packet import FramePacket
from realtime.pipeline.processor import DetectRequest, FrameProcessor, LandmarkRequest
from realtime.stages.landmarker import Landmarker


def pools_landmarks(landmarker: Landmarker) -> bool:
    """Whether ``run_streams`` batches the landmarks of all streams by default: on a GPU, where
    one big batch is what keeps it busy; not on a CPU, where a network's result depends (by ~1e-4
    px) on the batch it ran in, so records would no longer equal a single-input run's, and where
    a bigger batch buys little."""
    return getattr(getattr(landmarker, "device", None), "type", "cpu") == "cuda"


def process_together(processors: Sequence[FrameProcessor], frames: Sequence[CapturedFrame],
                     batch_landmarks: bool = True) -> list[FramePacket]:
    """One frame of each stream (``frames[i]`` for ``processors[i]``, each keeping its own tracks
    and filters) with ONE batched detector call over the frames that need detection, then ONE
    batched landmark call over all their faces (and one more over the faces that were just
    detected, for their refined crops). The processors must share one landmarker and one detector
    (``FrameProcessor.from_config(config, landmarker, detector)``). It is the same chain as calling
    each processor on its own frame; only the model calls are pooled.

    ``batch_landmarks`` False answers each stream's landmark request with its own call (one batch
    per frame, as a single-input run does), so the packets are bit-for-bit those of single runs
    (the detector's letterboxed batch is exact either way: every image has the same canvas)."""
    if not processors:
        return []
    landmarker, detector = processors[0].landmarker, processors[0].detector
    if any(p.landmarker is not landmarker or p.detector is not detector for p in processors):
        raise ValueError("process_together needs processors that share one landmarker and one detector")
    chains = [p.steps(f) for p, f in zip(processors, frames)]
    packets: list[FramePacket | None] = [None] * len(chains)
    pending = {}
    for i, chain in enumerate(chains):
        try:
            pending[i] = next(chain)
        except StopIteration as done:  # a chain with nothing to ask (a skipped still)
            packets[i] = done.value
    while pending:
        # every detection first, so that all first landmark requests meet in one batch
        kind = DetectRequest if any(isinstance(r, DetectRequest) for r in pending.values()) else LandmarkRequest
        ready = [i for i, r in pending.items() if isinstance(r, kind)]
        if kind is DetectRequest:
            answers = detector.detect_batch([pending[i].image for i in ready])
        elif batch_landmarks:
            answers = landmarker.batch([(pending[i].image, pending[i].rois) for i in ready])
        else:
            answers = [landmarker.batch([(pending[i].image, pending[i].rois)])[0] for i in ready]
        for i, answer in zip(ready, answers):
            try:
                pending[i] = chains[i].send(answer)
            except StopIteration as done:
                packets[i] = done.value
                del pending[i]
    return packets  # type: ignore[return-value]

