"""Live mode's detector thread alone (``realtime.pipeline.detect_ahead``): what a frame gets back."""
from __future__ import annotations

import threading
import time

import pytest

from realtime.core.errors import UserError
from realtime.pipeline.detect_ahead import DetectAhead


def wait_done(ahead: DetectAhead, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while ahead._busy and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not ahead._busy


@pytest.fixture
def ahead():
    made = DetectAhead(max_age=3)
    yield made
    made.close()


def test_a_round_starts_then_a_later_frame_takes_its_result_once(ahead):
    assert ahead.take(1, lambda: "round of frame 1") is None  # started: this frame goes on without
    wait_done(ahead)
    assert ahead.take(2, lambda: "never run") == "round of frame 1"
    assert ahead.rounds == 1
    assert ahead.take(3, lambda: "round of frame 3") is None  # taken once: a new wish starts a new round
    wait_done(ahead)
    assert ahead.rounds == 2 and ahead.take(4, lambda: "x") == "round of frame 3"


def test_one_round_at_a_time_and_frames_never_wait(ahead):
    release = threading.Event()
    started = []

    def slow():
        started.append(1)
        release.wait(5)
        return "slow"

    assert ahead.take(1, slow) is None
    t0 = time.monotonic()
    assert all(ahead.take(i, lambda: "second") is None for i in range(2, 4))  # busy: nothing new starts
    assert time.monotonic() - t0 < 0.5 and ahead.rounds == 1
    release.set()
    wait_done(ahead)
    assert ahead.take(4, lambda: "x") == "slow" and started == [1]


def test_a_stale_result_is_dropped_and_a_fresh_round_starts(ahead):
    ahead.take(1, lambda: "old")
    wait_done(ahead)
    assert ahead.take(1 + 4, lambda: "fresh") is None  # 4 frames old > max_age 3
    wait_done(ahead)
    assert ahead.take(6, lambda: "x") == "fresh"


def test_reset_forgets_a_finished_and_a_running_round(ahead):
    ahead.take(1, lambda: "before")
    wait_done(ahead)
    ahead.reset()
    release = threading.Event()
    assert ahead.take(2, lambda: release.wait(5) and "running at reset") is None
    ahead.reset()
    release.set()
    wait_done(ahead)
    assert ahead.take(3, lambda: "after") is None  # nothing kept: a new round starts


def test_a_failed_round_raises_in_the_next_take_and_close_joins(ahead):
    def broken():
        raise UserError("detector failed")

    ahead.take(1, broken)
    wait_done(ahead)
    with pytest.raises(UserError, match="detector failed"):
        ahead.take(2, lambda: "x")
    ahead.close()
    ahead.close()  # idempotent
    assert not ahead._thread.is_alive()
    assert ahead.take(3, lambda: "after close") is None and ahead.rounds == 1  # closed: nothing starts


def test_a_still_shown_live_gets_its_faces_in_its_own_frame():
    """An image in the live window is one still frame: it detects in its own frame, not a later one
    (there is none), so the picture is shown with its face."""
    from realtime.io.capture import ImageSource
    from realtime.pipeline.config import PipelineConfig
    from realtime.pipeline.live_pipeline import LivePipeline
    from realtime.pipeline.processor import FrameProcessor
    from realtime.video import DEFAULT_WEIGHTS

    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the bundled landmark model is not there")
    processor = FrameProcessor.from_config(PipelineConfig(DEFAULT_WEIGHTS))
    with LivePipeline(ImageSource("assets/astronaut.jpg"), processor) as pipeline:
        packets = list(pipeline)
    assert len(packets) == 1 and len(packets[0].faces) == 1
