"""The bundled demo clip (``train/tools/make_demo_clip.py``, ``assets/demo.mp4``, ``assets/demo_truth.json``)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.core.assets import ASTRONAUT_PTS, DEMO_CLIP, DEMO_TRUTH
from train.tools.make_demo_clip import Clip, ClipSpec, apply_homography, build
from train.labels.democlip import astronaut_points, load_truth

cv2.setNumThreads(1)
BLANK = np.zeros((512, 512, 3), np.uint8)  # stands in for the astronaut where only geometry matters


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    av = pytest.importorskip("av")
    frames, times = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(frame.time)
    return frames, times


def test_short_clip_regenerates_with_frames_timestamps_and_a_still_segment(tmp_path):
    pytest.importorskip("skimage")
    spec = ClipSpec(seconds=1.0, still_s=0.5)
    video, truth_path = tmp_path / "clip.mp4", tmp_path / "truth.json"
    build(spec, video, truth_path, crf=30, preset="ultrafast")
    frames, times = decode(video)
    truth = load_truth(truth_path)
    assert len(frames) == truth["num_frames"] == len(truth["frames"]) == 30
    assert frames[0].shape == (480, 640, 3) and (truth["width"], truth["height"]) == (640, 480)
    assert [f["index"] for f in truth["frames"]] == list(range(30))
    assert np.allclose(times, truth["t"], atol=1e-6) and np.all(np.diff(truth["t"]) > 0.03)
    assert truth["layout"] == "ibug68" and truth["still_frames"] == [0, 15]
    still = truth["points"][:15]
    assert np.array_equal(still, np.broadcast_to(still[0], still.shape))
    assert all(f["motion"] == truth["frames"][0]["motion"] for f in truth["frames"][:15])
    assert np.abs(truth["points"][29] - truth["points"][0]).max() > 2  # moving after the still
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "truth.json"]  # nothing left over


def test_truth_points_follow_the_warp_to_a_tenth_of_a_pixel():
    """Bright dots drawn at four truth points of the source land where the truth says, frame by
    frame (renderer and truth are separate code paths; a half-pixel slip would be ~0.8 px here)."""
    points = astronaut_points()
    source = np.zeros((512, 512, 3), np.float32)
    ys, xs = np.mgrid[0:512, 0:512]
    picks = (36, 45, 30, 57)
    for k in picks:
        source += 150 * np.exp(-((xs - points[k, 0]) ** 2 + (ys - points[k, 1]) ** 2) / (2 * 1.5 ** 2))[:, :, None]
    clip = Clip(ClipSpec(), source=np.clip(source, 0, 255).astype(np.uint8), points=points)
    for index in (0, 100, 159, 250):
        frame = clip.frame(index, noise=False)[:, :, 1].astype(np.float64)
        truth = clip.truth_points(index)
        for k in picks:
            x, y = np.round(truth[k]).astype(int)
            win = frame[y - 8:y + 9, x - 8:x + 9]
            wy, wx = np.mgrid[y - 8:y + 9, x - 8:x + 9]
            centroid = np.array([(win * wx).sum(), (win * wy).sum()]) / win.sum()
            assert np.abs(centroid - truth[k]).max() < 0.1, (index, k, centroid, truth[k])


def test_still_frames_differ_only_by_sensor_noise():
    clip = Clip(ClipSpec(), source=BLANK + 128)
    a, b = clip.frame(0, noise=False), clip.frame(59, noise=False)
    assert np.array_equal(a, b)
    diff = clip.frame(0).astype(float) - clip.frame(1).astype(float)
    assert 3.0 < diff.std() < 6.0  # two independent draws of sigma 3
    assert np.array_equal(clip.frame(7), clip.frame(7))  # the noise of a frame is a function of the seed


def test_committed_clip_decodes_to_the_frame_count_of_its_truth():
    video, truth_path = DEMO_CLIP, DEMO_TRUTH
    truth = load_truth(truth_path)
    frames, times = decode(video)
    assert len(frames) == truth["num_frames"] == len(truth["frames"])
    assert frames[0].shape == (truth["height"], truth["width"], 3)
    assert np.allclose(times, truth["t"], atol=1e-6)
    assert video.stat().st_size < 1.5e6
    first, end = truth["still_frames"]
    assert end - first >= 1.5 * truth["fps"]
    assert np.ptp(truth["points"][first:end], axis=0).max() == 0


def test_committed_truth_is_what_the_generator_gives():
    """The truth file matches the code (rebuild the clip after changing the motion) and its
    points are the committed astronaut labels mapped by each frame's homography."""
    doc = json.loads(DEMO_TRUTH.read_text())
    spec = ClipSpec(fps=doc["fps"], seconds=doc["num_frames"] / doc["fps"],
                    still_s=doc["still_frames"][1] / doc["fps"], seed=doc["seed"])
    clip = Clip(spec, source=BLANK)
    source = astronaut_points(ASTRONAUT_PTS)
    for index in (0, 60, 150, doc["num_frames"] - 1):
        stored, fresh = doc["frames"][index], clip.truth_record(index)
        assert stored["index"] == index and stored["t"] == fresh["t"]
        for key in ("motion", "light"):
            assert stored[key].keys() == fresh[key].keys()
            assert np.allclose(np.hstack(list(stored[key].values())), np.hstack(list(fresh[key].values())), atol=2e-5)
        assert np.allclose(stored["homography"], fresh["homography"], rtol=1e-7, atol=1e-8)
        assert np.abs(np.array(stored["points"]) - fresh["points"]).max() <= 0.011
        h = np.array(stored["homography"]).reshape(3, 3)
        assert np.abs(apply_homography(h, source) - np.array(stored["points"])).max() < 0.01


def test_source_stays_inside_the_blurred_border():
    """The frame never samples beyond the portrait's blurred mirror border (no sharp mirrored hair or face)."""
    from train.tools.make_demo_clip import PAD_PX

    clip = Clip(ClipSpec(), source=BLANK)
    corners = np.array([[0, 0], [639, 0], [0, 479], [639, 479]], np.float64)
    for index in range(0, clip.spec.num_frames, 3):
        back = apply_homography(np.linalg.inv(clip.homography(index)), corners)
        assert back.min() > -PAD_PX and back.max() < 512 + PAD_PX
