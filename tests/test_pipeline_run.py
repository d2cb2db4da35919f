"""The processor without threads, file mode with exact frame accounting, live mode with a slow consumer."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("av")

from realtime.core.assets import SYNTH_5 as WEIGHTS
from realtime.io.capture import CapturedFrame, ImageSource, VideoFileSource, open_source
from realtime.core.errors import UserError
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.live_pipeline import LivePipeline
import realtime.pipeline.processor as processor_module
from realtime.pipeline.processor import FrameProcessor
from realtime.pipeline.runners import run_file
from test_pipeline_capture import make_clip

torch.set_num_threads(1)
cv2.setNumThreads(1)
# the full-range BlazeFace finds the 128 px face of a 160x120 clip; the short range does not
CONFIG = PipelineConfig(WEIGHTS, detector="full")


@pytest.fixture
def processor() -> FrameProcessor:
    return FrameProcessor.from_config(CONFIG)


@pytest.mark.usefixtures("face_photo")  # make_clip draws it; a pattern without it has no face to find
def test_processor_alone_finds_and_tracks_the_face(tmp_path, processor):
    with VideoFileSource(make_clip(tmp_path / "clip.mp4", frames=6)) as source:
        packets = [processor(frame) for frame in source]
    assert [len(p.faces) for p in packets] == [1] * 6
    face = packets[-1].faces[0]
    assert face.points.shape == (5, 2) and face.scores.shape == (5,)
    assert face.pose is not None  # the shipped mean face's 5-point subset, by default
    x0, y0, x1, y1 = face.box_xyxy
    assert ((face.points >= [x0, y0]) & (face.points <= [x1, y1])).all()
    assert {"detect_ms", "track_ms", "landmarks_ms", "smooth_ms", "pose_ms", "process_ms"} <= set(packets[0].timings)


@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 4), (48, 64), (48, 64, 4)])
def test_no_face_tiny_grey_and_rgba_frames_give_clean_empty_results(tmp_path, processor, shape):
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), np.full(shape, 128, np.uint8))
    (frame,) = list(ImageSource(path))
    packet = processor(frame)
    assert packet.faces == [] and packet.image.shape == (*shape[:2], 3)


@pytest.mark.parametrize("asked, expected", [(None, 3), (2, 2)])
def test_the_pipeline_builds_its_landmarker_with_the_pipeline_thread_count(monkeypatch, asked, expected):
    """``inference_threads`` None: ``pipeline_threads()`` (a core left for decoding, encoding and
    the window); a number is passed as given."""
    seen = []
    real = processor_module.Landmarker

    def spy(*args, threads=None, **kwargs):
        seen.append(threads)
        return real(*args, threads=threads, **kwargs)

    monkeypatch.setattr(processor_module, "Landmarker", spy)
    monkeypatch.setattr(processor_module, "pipeline_threads", lambda: 3)
    FrameProcessor.from_config(PipelineConfig(WEIGHTS, detector="full", inference_threads=asked))
    assert seen == [expected]


def test_zero_inference_threads_is_refused_not_read_as_the_default():
    with pytest.raises(UserError, match="inference threads must be at least 1, got 0"):
        FrameProcessor.from_config(PipelineConfig(WEIGHTS, detector="full", inference_threads=0))


def test_pose_model_with_the_wrong_point_count_is_refused():
    with pytest.raises(UserError, match="3D face model"):
        FrameProcessor.from_config(PipelineConfig(WEIGHTS, face_model_3d=np.zeros((68, 3))))


def test_file_mode_processes_every_frame_in_order(tmp_path, processor):
    clip = make_clip(tmp_path / "clip.mp4", frames=32)
    seen = []
    stats = run_file(open_source(str(clip)), processor, seen.append, queue_size=4)
    assert stats.decoded == stats.processed == len(seen) == 32
    assert [p.frame_id for p in seen] == list(range(32))
    assert all(p.dropped == 0 and p.timings["latency_ms"] >= p.timings["process_ms"] for p in seen)
    assert [t.name for t in threading.enumerate() if t.name == "capture"] == []


def test_file_mode_truncated_video_processes_what_decodes_then_raises(tmp_path, processor):
    clip = make_clip(tmp_path / "clip.mp4", frames=24, faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])
    seen = []
    with pytest.raises(UserError, match="truncated"):
        run_file(open_source(str(cut)), processor, seen.append)
    assert 0 < len(seen) < 24 and [p.frame_id for p in seen] == list(range(len(seen)))


def test_file_mode_stops_cleanly_when_the_consumer_fails(tmp_path, processor):
    clip = make_clip(tmp_path / "clip.mp4", frames=32)

    def consumer(packet):
        if packet.frame_id == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_file(open_source(str(clip)), processor, consumer, queue_size=2)
    assert [t.name for t in threading.enumerate() if t.name == "capture"] == []


def test_live_mode_with_a_slow_consumer_drops_at_the_entrance_only(tmp_path, processor):
    clip = make_clip(tmp_path / "clip.mp4", frames=30, fps=50)  # 0.6 s played as live
    pipeline = LivePipeline(VideoFileSource(clip, as_live=True), processor)
    got = []
    with pipeline:
        for packet in pipeline:
            got.append(packet)
            time.sleep(0.06)  # the slow consumer (a GUI busy drawing), not a poll
    stats = pipeline.stats
    ids = [p.frame_id for p in got]
    assert ids == sorted(set(ids)) and stats.decoded == 30
    assert stats.dropped > 0 and pipeline.results.dropped == 0
    assert stats.processed == len(got) and stats.processed + stats.dropped == stats.decoded
    assert got[-1].dropped == stats.dropped
    # a frame waits at most one processing plus one consumer step: latency stays bounded
    assert max(p.timings["latency_ms"] for p in got) < 400
    assert not any(t.is_alive() for t in pipeline._threads)


def test_live_mode_memory_stays_flat_while_frames_are_dropped(tmp_path, processor):
    import tracemalloc

    clip = make_clip(tmp_path / "clip.mp4", frames=300, fps=200)  # 1.5 s as live, far faster than the consumer
    frame_bytes = 160 * 120 * 3
    tracemalloc.start()
    try:
        pipeline = LivePipeline(VideoFileSource(clip, as_live=True), processor)
        usage = []
        with pipeline:
            for i, packet in enumerate(pipeline):
                time.sleep(0.01)
                if i >= 5:
                    usage.append(tracemalloc.get_traced_memory()[0])
                del packet
    finally:
        tracemalloc.stop()
    stats = pipeline.stats
    assert stats.dropped > 100 and len(usage) > 10  # most frames dropped, many processed
    # dropped frames are released: growth after warm-up stays under 40 frames' worth (2.3 MB), not the
    # dropped frames' worth (over 100 frames, 5.8 MB or more). In the full suite about 1.3 MB of one-off
    # allocations (library caches warming up) lands in the second half; alone it grows far less.
    growth = max(usage[len(usage) // 2:]) - min(usage[:len(usage) // 2])
    assert growth < 40 * frame_bytes < stats.dropped * frame_bytes / 2, \
        f"memory grew {growth / 1e6:.1f} MB while {stats.dropped} frames were dropped"


def test_live_stop_mid_stream_joins_threads_and_releases_the_source(tmp_path, processor):
    clip = make_clip(tmp_path / "clip.mp4", frames=200, fps=25)  # 8 s as live
    source = VideoFileSource(clip, as_live=True)
    pipeline = LivePipeline(source, processor).start()
    assert pipeline.get(timeout_s=2.0) is not None
    start = time.monotonic()
    stats = pipeline.stop()
    assert time.monotonic() - start < 0.5
    assert not any(t.is_alive() for t in pipeline._threads) and 0 < stats.decoded < 200


def test_live_mode_reports_a_source_error_to_the_consumer(processor):
    class Broken(ImageSource):
        def __init__(self) -> None:  # noqa: D107 - a source that fails after one frame
            super(ImageSource, self).__init__()

        def __iter__(self):
            yield CapturedFrame(0, 0.0, np.zeros((8, 8, 3), np.uint8))
            raise UserError("camera 0 stopped delivering frames")

    with LivePipeline(Broken(), processor) as pipeline:
        with pytest.raises(UserError, match="stopped delivering"):
            list(pipeline)


def test_an_8k_frame_is_processed(processor):
    image = np.zeros((4320, 7680, 3), np.uint8)
    packet = processor(CapturedFrame(0, 0.0, image))
    assert packet.image.shape == (4320, 7680, 3) and isinstance(packet.faces, list)
