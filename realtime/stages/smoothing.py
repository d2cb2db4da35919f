"""One Euro filter (Casiez, Roussel and Vogel, CHI 2012) for landmarks, vectorised per track.

numpy only. The filter is a first-order low-pass whose cutoff rises with speed: still points get
``min_cutoff`` (heavy smoothing, little jitter), fast points get ``min_cutoff + beta * speed``
(little lag). Every step uses the real time since the previous sample (``t`` in seconds from the
frame's capture time), never an assumed frame rate:

    speed  = low-pass(|x_n - x_{n-1}| / dt, d_cutoff) / scale
    x_hat  = low-pass(x, min_cutoff + beta * speed)

Face-size scaling: ``scale`` is the face's size in the same units as ``x`` (image pixels), for
instance its box side or inter-ocular distance. Speed is measured in face sizes per second, so
``beta`` has units Hz per (face size / s) and the same parameters behave the same for a face
40 px wide at the back of the room and 400 px wide at the camera; jitter, which also scales with
the face, is smoothed alike. ``min_cutoff`` and ``d_cutoff`` are in Hz and need no scaling.
Speed is the norm over the last axis (x and y together), so one point gets one cutoff whatever
the direction it moves in.

Discretisation (where this departs from the paper, on purpose): each low-pass step is the exact
solution of the continuous filter ``dy/dt = (x - y) / tau``, ``tau = 1 / (2 pi cutoff)``, for an
input that moves linearly from the previous sample to the new one over ``dt`` (first-order hold):

    e = exp(-dt / tau)
    y_n = y_{n-1} + (1 - e) (x_{n-1} - y_{n-1}) + (1 - tau (1 - e) / dt) (x_n - x_{n-1})

The paper's ``alpha = 1 / (1 + tau / dt)`` treats the new sample as if it had been there for the
whole interval, which adds a delay of about dt/2 that changes with dt: a 30 fps stream with
dropped frames then lags by a different amount than a regular one. With the first-order hold,
irregular timestamps give the same trajectory as a densely sampled regular series (tested to
~1 px on a 30 px sine). The speed is likewise taken from raw successive samples.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# Samples closer together than this (seconds) count as the same instant.
MIN_DT_S = 1e-4


@dataclass
class SmoothingParams:
    """Live-tunable One Euro parameters; deliberately mutable (not frozen).

    Filters hold a reference and read the fields on every call, so a GUI that assigns, e.g.,
    ``params.beta = 2.0`` changes the very next frame. ``min_cutoff`` Hz (lower: less jitter, more
    lag when still); ``beta`` Hz per (face size / s) (higher: less lag when moving);
    ``d_cutoff`` Hz for the speed estimate. ``enabled=False`` passes samples through.
    The defaults were picked on a second demo clip (``python -m train.tools.make_demo_clip --seed 1``, not the
    bundled one) with the bundled 68-point model, trading the still segment's jitter against NME
    while the head moves: beta 6 (the first default) lagged so much that smoothing doubled the NME
    (7.1% vs 3.9% with beta 60); beta 30 keeps it at 4.2% and halves the jitter. On synthetic
    30 fps tracks (tests/test_stages_smoothing.py) jitter of 0.3% (1%) of the face size is cut
    4.1x (2.6x), a ramp of half a face size per second lags 0.4% of the face size, a jump of 20%
    of the face settles to within 1% in 1 frame.
    """

    min_cutoff: float = 0.1
    beta: float = 30.0
    d_cutoff: float = 0.5
    enabled: bool = True


def _low_pass_step(y: np.ndarray, x_prev: np.ndarray, x: np.ndarray, cutoff_hz: np.ndarray | float,
                   dt_s: float) -> np.ndarray:
    """One exact first-order-hold step of a low-pass with cutoff ``cutoff_hz`` (see module)."""
    if isinstance(cutoff_hz, float):  # one cutoff for all: plain floats, not 0-d arrays
        tau_s = 1.0 / (2.0 * math.pi * max(cutoff_hz, 1e-9))
        one_minus_e = -math.expm1(-dt_s / tau_s)
    else:
        tau_s = 1.0 / (2.0 * math.pi * np.maximum(cutoff_hz, 1e-9))
        one_minus_e = -np.expm1(-dt_s / tau_s)
    return y + one_minus_e * (x_prev - y) + (1.0 - tau_s * one_minus_e / dt_s) * (x - x_prev)


class OneEuroFilter:
    """One Euro filter over an array of shape (..., D), e.g. (K, 2) landmarks or (4,) quaternion."""

    def __init__(self, params: SmoothingParams | None = None) -> None:
        self.params = params if params is not None else SmoothingParams()
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next sample passes through unchanged."""
        self._x_hat: np.ndarray | None = None
        self._x_prev = self._dx_hat = self._dx_prev = np.zeros(0)
        self._t_last: float | None = None

    @property
    def t_last(self) -> float | None:
        """Time in seconds of the last sample that moved the filter (None after a reset)."""
        return self._t_last

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Filter the sample ``x`` (..., D) taken at ``t`` seconds; ``scale`` face size (see module).

        The first sample after a reset, or one whose shape differs, passes through. A sample less
        than ``MIN_DT_S`` after the previous one (a repeated, out-of-order or near-duplicate
        timestamp, whose speed estimate would blow up) does not move the filter: the previous
        estimate is returned. Returns a new float64 array.
        """
        x = np.asarray(x, dtype=np.float64)
        params = self.params
        if self._x_hat is None or self._x_hat.shape != x.shape or not params.enabled:
            self._x_hat, self._x_prev, self._t_last = x.copy(), x.copy(), float(t)
            self._dx_hat, self._dx_prev = np.zeros_like(x), np.zeros_like(x)
            return x.copy()
        dt_s = float(t) - self._t_last
        if dt_s < MIN_DT_S:
            return self._x_hat.copy()
        dx = (x - self._x_prev) / dt_s
        self._dx_hat = _low_pass_step(self._dx_hat, self._dx_prev, dx, float(params.d_cutoff), dt_s)
        speed = np.linalg.norm(self._dx_hat, axis=-1, keepdims=True) / max(float(scale), 1e-9)
        cutoff_hz = params.min_cutoff + params.beta * speed
        self._x_hat = _low_pass_step(self._x_hat, self._x_prev, x, cutoff_hz, dt_s)
        self._x_prev, self._dx_prev, self._t_last = x.copy(), dx, float(t)
        return self._x_hat.copy()


class TrackSmoother:
    """A bank of One Euro filters keyed by track id, all sharing one live ``SmoothingParams``.

    A track not updated for more than ``max_gap_s`` seconds is reset on its next update (it was
    lost and is seen again); ``prune`` drops the filters of tracks that no longer exist.
    ``scale`` should be a steady measure of the face's size in pixels, such as the side of the
    track's crop box (``FaceRoi.box[2]``) or the inter-ocular distance of the smoothed points,
    not a per-frame measure of the raw, jittery points.
    """

    def __init__(self, params: SmoothingParams | None = None, max_gap_s: float = 0.5) -> None:
        self.params = params if params is not None else SmoothingParams()
        self.max_gap_s = max_gap_s
        self._filters: dict[int, OneEuroFilter] = {}

    def __call__(self, track_id: int, points: np.ndarray, t: float, scale: float) -> np.ndarray:
        """Smooth one track's (K, 2) points at ``t`` seconds, face size ``scale`` pixels."""
        filt = self._filters.get(track_id)
        if filt is None:
            filt = self._filters[track_id] = OneEuroFilter(self.params)
        elif filt.t_last is not None and t - filt.t_last > self.max_gap_s:
            filt.reset()
        return filt(points, t, scale)

    def smooth_frame(self, t: float, tracks: dict[int, tuple[np.ndarray, float]]) -> dict[int, np.ndarray]:
        """Smooth every track of one frame, {track_id: ((K, 2) points, scale)}, and drop the
        filters of tracks not in this frame (a track that disappears starts afresh)."""
        out = {track_id: self(track_id, points, t, scale) for track_id, (points, scale) in tracks.items()}
        self.prune(tracks.keys())
        return out

    def prune(self, keep_ids: Iterable[int]) -> None:
        """Drop the filters of every track id not in ``keep_ids``."""
        keep = set(keep_ids)
        for track_id in [k for k in self._filters if k not in keep]:
            del self._filters[track_id]

    def reset(self, track_id: int | None = None) -> None:
        """Reset one track's filter, or every filter when ``track_id`` is None."""
        if track_id is None:
            self._filters.clear()
        else:
            self._filters.pop(track_id, None)

    @property
    def track_ids(self) -> list[int]:
        return sorted(self._filters)
