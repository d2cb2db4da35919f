"""One Euro smoothing: jitter reduction, bounded lag, real timestamps, face-size scaling, tracks."""
from __future__ import annotations

import numpy as np

from realtime.stages.smoothing import OneEuroFilter, SmoothingParams, TrackSmoother

BASE = np.array([[50.0, 60.0], [70.0, 80.0], [90.0, 65.0]])  # (K, 2) pixels
FACE_PX = 100.0


def run(filt: OneEuroFilter, times: np.ndarray, signal) -> np.ndarray:
    return np.array([filt(signal(i, t), t, FACE_PX) for i, t in enumerate(times)])


def test_still_face_jitter_is_cut_by_a_large_factor():
    rng = np.random.default_rng(0)
    times = np.arange(300) / 30.0
    noise = rng.normal(0.0, 0.3, (len(times), *BASE.shape))  # 0.3% of the face size
    out = run(OneEuroFilter(), times, lambda i, t: BASE + noise[i])
    ratio = noise[60:].std() / np.sqrt(((out[60:] - BASE) ** 2).mean())
    assert ratio > 3.5, ratio  # 4.1x at the defaults (beta 6 gave 5.9x, but lagged 5x more)


def test_step_and_ramp_are_followed_with_bounded_lag():
    times = np.arange(120) / 30.0
    step = run(OneEuroFilter(), times, lambda i, t: BASE + (20.0 if i >= 30 else 0.0))
    settled = np.abs(step[:, 0, 0] - (BASE[0, 0] + 20.0)) < 1.0
    assert settled[30 + 10:].all()  # within 1 px a third of a second after a 20% face jump
    ramp = run(OneEuroFilter(), times, lambda i, t: BASE + FACE_PX * t)  # one face size per second
    assert np.abs(ramp[30:] - (BASE + FACE_PX * times[30:, None, None])).max() < 5.0
    slow = run(OneEuroFilter(), times, lambda i, t: BASE + 0.5 * FACE_PX * t)  # a slow head turn
    assert np.abs(slow[30:] - (BASE + 0.5 * FACE_PX * times[30:, None, None])).max() < 0.6  # % of the face


def test_irregular_timestamps_match_a_regular_series():
    """30 fps with timing jitter and 30% of frames dropped vs a regular 240 Hz series, resampled."""
    def signal(t):
        return BASE + 30.0 * np.sin(2 * np.pi * 0.5 * t)

    regular_t = np.arange(0.0, 4.0, 1.0 / 240.0)
    filt = OneEuroFilter()
    regular = np.array([filt(signal(t), t, FACE_PX) for t in regular_t])
    rng = np.random.default_rng(1)
    frames_t = np.arange(0.0, 4.0, 1.0 / 30.0)
    kept = rng.random(len(frames_t)) > 0.3
    irregular_t = frames_t[kept] + rng.uniform(-0.004, 0.004, kept.sum())
    filt = OneEuroFilter()
    irregular = np.array([filt(signal(t), t, FACE_PX) for t in irregular_t])
    fake = OneEuroFilter()  # what an assumed 30 fps would give: a reference for the tolerance
    assumed_fps = np.array([fake(signal(t), i / 30.0, FACE_PX) for i, t in enumerate(irregular_t)])
    resampled = np.stack([np.interp(irregular_t, regular_t, regular[:, k, d])
                          for k in range(BASE.shape[0]) for d in range(2)], -1).reshape(irregular.shape)
    late = irregular_t > 1.0  # after the start-up transient
    error = np.abs(irregular - resampled)[late].max()
    assert error < 1.5, error  # amplitude 30 px
    assert np.abs(assumed_fps - resampled)[late].max() > 4 * error


def test_same_relative_motion_is_smoothed_alike_at_any_face_size():
    rng = np.random.default_rng(2)
    times = np.cumsum(rng.uniform(0.02, 0.05, 100))
    noise = rng.normal(0.0, 1.0, (len(times), *BASE.shape))
    small, large = OneEuroFilter(), OneEuroFilter()
    for t, n in zip(times, noise):
        a = small(BASE + n + 10 * t, t, FACE_PX)
        b = large(10 * (BASE + n + 10 * t), t, 10 * FACE_PX)
        np.testing.assert_allclose(b, 10 * a, rtol=1e-9)


def test_dt_not_positive_leaves_the_estimate_alone_and_params_are_live():
    filt = OneEuroFilter(SmoothingParams())
    filt(BASE, 1.0, FACE_PX)
    moved = filt(BASE + 10, 1.1, FACE_PX)
    np.testing.assert_array_equal(filt(BASE + 50, 1.1, FACE_PX), moved)
    np.testing.assert_array_equal(filt(BASE - 50, 1.0, FACE_PX), moved)
    np.testing.assert_array_equal(filt(BASE - 50, 1.1 + 1e-6, FACE_PX), moved)  # near-duplicate time
    filt.params.enabled = False
    np.testing.assert_array_equal(filt(BASE + 7, 1.2, FACE_PX), BASE + 7)
    filt.params.enabled, filt.params.min_cutoff, filt.params.beta = True, 1e6, 0.0
    np.testing.assert_allclose(filt(BASE + 3, 1.3, FACE_PX), BASE + 3, atol=1e-3)  # huge cutoff


def test_tracks_are_independent_dropped_and_reset_when_lost():
    bank = TrackSmoother(max_gap_s=0.5)
    bank.smooth_frame(0.0, {1: (BASE, FACE_PX), 2: (BASE + 100, FACE_PX)})
    out = bank.smooth_frame(0.033, {1: (BASE + 10, FACE_PX), 2: (BASE + 100, FACE_PX)})
    assert 0 < out[1][0, 0] - BASE[0, 0] < 10
    np.testing.assert_allclose(out[2], BASE + 100)  # track 1's motion does not leak into track 2
    out = bank.smooth_frame(0.066, {1: (BASE + 10, FACE_PX)})
    assert bank.track_ids == [1]
    out = bank.smooth_frame(0.1, {1: (BASE + 10, FACE_PX), 2: (BASE, FACE_PX)})
    np.testing.assert_allclose(out[2], BASE)  # a new track 2 starts afresh
    np.testing.assert_allclose(bank(1, BASE - 40, 2.0, FACE_PX), BASE - 40)  # lost for 1.9 s: reset
    bank.reset()
    assert bank.track_ids == []
