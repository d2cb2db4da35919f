"""MediaPipe's face mesh (the ``mediapipe`` package: its own BlazeFace detector + 468-point mesh) as
a comparator, and the 7 points its layout shares with iBUG-68.

Used by ``python -m realtime.bench --parts mediapipe`` (speed and accuracy on the bundled clip, in
the same run as our pipeline) and ``python -m train.compare`` (accuracy on 300-W faces). Nothing
that ships uses it. Optional: ``mediapipe==0.10.21``, the last release whose wheel bundles the face
detector and mesh models (later ones download them at run time, which this project never does).
Its metadata pins numpy<2 and protobuf<5 and pulls opencv-contrib-python and jax; the face mesh
runs with this project's numpy 2, protobuf 6 (not 7: 0.10.21 reads ``FieldDescriptor.label``,
which protobuf 7 removed) and opencv-python-headless, so it is installed without its dependencies::

    pip install -e '.[mediapipe]' && pip install --no-deps mediapipe==0.10.21

The shared points, 0-based indices, named from the image (the subject's right eye is on the
image's left). iBUG-68 index -> MediaPipe 468-mesh index (``SHARED_POINTS``):

    36 -> 33   image-left eye, outer corner      42 -> 362  image-right eye, inner corner
    39 -> 133  image-left eye, inner corner      45 -> 263  image-right eye, outer corner
    48 -> 61   image-left mouth corner           54 -> 291  image-right mouth corner
    30 -> 4    nose tip

The eye and mouth corners are the mesh's named corner vertices. For the nose tip, the mesh's own
"nose tip" vertex 1 sits on the tip's far (lower) side in the image; vertex 4 matches what 300-W's
annotators marked: on 300 random 300-W faces (MediaPipe's detector, static mode) the median
distance from iBUG 30 was 3.4% of the outer-eye distance for 4 and 6.9% for 1. Each other mapped
vertex was within 0.8% of its nearest mesh vertex there (2.3-3.0% median distance in all).

NME over these 7 points, normalised by the truth's outer-eye-corner distance (iBUG 36-45, 0-based),
is ``nme7``; both systems are scored by it, ours on its 68-point predictions at the iBUG indices.
"""
from __future__ import annotations

import importlib.util
import io
import json
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from realtime.io.capture import VideoFileSource
from realtime.pipeline.cliptruth import nearest_face

SHARED_POINTS: tuple[tuple[int, int, str], ...] = (
    (36, 33, "image-left eye, outer corner"),
    (39, 133, "image-left eye, inner corner"),
    (42, 362, "image-right eye, inner corner"),
    (45, 263, "image-right eye, outer corner"),
    (48, 61, "image-left mouth corner"),
    (54, 291, "image-right mouth corner"),
    (30, 4, "nose tip"),
)
IBUG_INDICES = np.array([i for i, _, _ in SHARED_POINTS])
MESH_INDICES = np.array([m for _, m, _ in SHARED_POINTS])
OUTER_EYE_CORNERS = (36, 45)  # iBUG, 0-based: the normaliser
VERSION = "0.10.21"
INSTALL = f"pip install -e '.[mediapipe]' && pip install --no-deps mediapipe=={VERSION}"


def missing_reason() -> str | None:
    """Why the MediaPipe comparison cannot run here (one line), or None when it can."""
    if importlib.util.find_spec("mediapipe") is None:
        return f"mediapipe is not installed ({INSTALL})"
    try:
        found = version("mediapipe")
    except Exception:  # noqa: BLE001 - an unreadable install is reported, not raised
        return "mediapipe is installed but its version cannot be read"
    if found != VERSION:
        return (f"mediapipe {found} is installed; the comparison needs {VERSION}, the last release whose wheel "
                f"bundles its models (later ones download them at run time)")
    return None


def shared_from_ibug(points: np.ndarray) -> np.ndarray:
    """(..., 68, 2) iBUG-68 points -> (..., 7, 2) shared points, in ``SHARED_POINTS`` order."""
    return np.asarray(points)[..., IBUG_INDICES, :]


def shared_from_mesh(points: np.ndarray) -> np.ndarray:
    """(..., 468, 2) mesh points -> (..., 7, 2) shared points, in ``SHARED_POINTS`` order."""
    return np.asarray(points)[..., MESH_INDICES, :]


def nme7(shared: np.ndarray, truth68: np.ndarray) -> float:
    """Mean distance of the (7, 2) shared points from the truth's, over the truth's (68, 2)
    outer-eye-corner distance (a fraction, not %)."""
    a, b = OUTER_EYE_CORNERS
    iod = float(np.linalg.norm(truth68[a] - truth68[b]))
    return float(np.linalg.norm(shared - shared_from_ibug(truth68), axis=1).mean() / iod)


class MediaPipeMesh:
    """``mesh(rgb) -> list of (468, 2)`` image-pixel points (pixel centres at integers, as the rest
    of the project), one per face found.

    ``video`` True is MediaPipe's tracking mode (``static_image_mode=False``: its detector runs
    only while fewer than ``max_faces`` faces are tracked, the next crop comes from the mesh);
    False runs its detector on every image (unrelated photos). ``max_faces`` 1 is MediaPipe's
    default; ``refine_landmarks`` stays off (468 points, no iris model). Raises RuntimeError with
    ``missing_reason()`` when mediapipe cannot be used.
    """

    def __init__(self, video: bool = True, max_faces: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        reason = missing_reason()
        if reason is not None:
            raise RuntimeError(reason)
        from mediapipe.python.solutions import face_mesh

        self.settings = {"static_image_mode": not video, "max_num_faces": max_faces, "refine_landmarks": False,
                         "min_detection_confidence": min_detection_confidence,
                         "min_tracking_confidence": min_tracking_confidence}
        self._mesh = face_mesh.FaceMesh(**self.settings)

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = []
        for face in result.multi_face_landmarks or ():
            xy = np.array([(p.x, p.y) for p in face.landmark], np.float64)
            faces.append(xy * (w, h) - 0.5)  # fractions of the image's width/height (edges) -> pixel centres
        return faces

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "MediaPipeMesh":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_json(frame_id: int, t_capture: float, width: int, height: int, faces: list[np.ndarray]) -> str:
    """One JSON line per frame, as ``--landmarks OUT.jsonl`` writes ours (points to 2 decimals)."""
    return json.dumps({"frame_id": frame_id, "t_capture": round(t_capture, 6), "width": width, "height": height,
                       "faces": [{"points": np.round(f, 2).tolist()} for f in faces]}, separators=(",", ":"))


def clip_run(clip: str | Path, truth: np.ndarray, max_frames: int | None = None, max_faces: int = 1) -> dict:
    """MediaPipe end to end on a video file, as our file pipeline is timed: decode, its detector and
    mesh in tracking mode, one JSON line per frame (kept in memory, no video encode). ``truth``
    (N, 68, 2) picks the face nearest each frame's truth. -> {"frames", "wall_s", "fps", "points"
    (per frame the (7, 2) shared points or None)}. The graph is built and warmed up (one blank
    frame) before the clock starts, as our landmarker is."""

    points: list[np.ndarray | None] = []
    out = io.StringIO()
    with MediaPipeMesh(video=True, max_faces=max_faces) as mesh, VideoFileSource(clip) as source:
        mesh(np.zeros((source.stream.height, source.stream.width, 3), np.uint8))
        start = time.perf_counter()
        for frame in source:
            if max_frames is not None and len(points) >= max_frames:
                source.stop()
                break
            faces = mesh(frame.image)
            out.write(record_json(frame.frame_id, frame.t_capture, frame.image.shape[1], frame.image.shape[0], faces))
            out.write("\n")
            i = min(len(points), len(truth) - 1)
            face = nearest_face([shared_from_mesh(f) for f in faces], shared_from_ibug(truth[i]))
            points.append(face)
        wall_s = time.perf_counter() - start
    return {"frames": len(points), "wall_s": wall_s, "fps": len(points) / wall_s if wall_s else 0.0,
            "settings": mesh.settings, "points": points}


def score7(shared: list[np.ndarray | None], truth68: np.ndarray) -> dict[str, float]:
    """Per-face (7, 2) shared points (None: no face) against (N, 68, 2) truth -> found (fraction),
    nme_pct (mean over found faces), nme_median_pct, failures_pct (NME > 10%, of found faces)."""
    errors = np.array([nme7(p, t) for p, t in zip(shared, truth68) if p is not None])
    found = len(errors)
    return {"faces": len(shared), "found": found / len(shared) if len(shared) else float("nan"),
            "nme_pct": 100 * float(errors.mean()) if found else float("nan"),
            "nme_median_pct": 100 * float(np.median(errors)) if found else float("nan"),
            "failures_pct": 100 * float((errors > 0.10).mean()) if found else float("nan")}
