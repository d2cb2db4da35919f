"""The Python API: facial landmarks in three lines, on the pipeline the command lines run.

    >>> from realtime import FaceLandmarker
    >>> landmarker = FaceLandmarker()                  # the bundled 68-point model
    >>> faces = landmarker(DEMO_PHOTO)                # a path, an array or a PIL image
    >>> [(face.track_id, face.points.shape, face.scores.shape) for face in faces]
    [(0, (68, 2), (68,))]

Each face is a ``FaceResult`` (``realtime.core.packet``): ``box_xyxy`` (4,) and ``points`` (68, 2) in
image pixels (x before y, pixel centres at integers), ``scores`` (68,) per-point confidence (the
soft-argmax peak), ``pose`` (a ``HeadPose``: ``yaw_deg``, ``pitch_deg``, ``roll_deg``), ``track_id``
and ``detection_score``; ``to_dict()`` gives the face as a ``--landmarks`` JSON record writes it:

    >>> sorted(faces[0].to_dict())
    ['box_xyxy', 'detection_score', 'points', 'pose', 'scores', 'track_id']

``FaceLandmarker.track(source)`` runs a video file, a camera index or a folder of images and yields
one ``FramePacket`` a frame (``frame_id``, ``t_capture``, ``source``, ``faces``, ``to_dict()``), with
the same records as ``python -m realtime.video`` gives for the same input and options.

Nothing here is a second pipeline: options become a ``PipelineConfig`` (``pipeline_config``, which
``python -m realtime.video`` uses too), ``FrameProcessor.from_config`` assembles it, and
``realtime.io.capture.open_source`` reads the inputs. Bad options or input raise ``UserError``, a
``ValueError``; a missing file ``InputNotFoundError``, also a ``FileNotFoundError``.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from realtime.core.assets import DEMO_CLIP, DEMO_PHOTO, LANDMARKS_68, weights_path
from realtime.core.cliargs import FOCAL_PX, HFOV_DEG, SCORE, Range
from realtime.core.errors import UserError, model_file
from realtime.core.packet import FaceResult, FramePacket
from realtime.detect.detector import DEFAULT_DETECTOR
from realtime.geometry.meanface import load_face_model
from realtime.io.capture import DEFAULT_FOLDER_RATE_HZ, CapturedFrame, open_source, read_image, to_rgb
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.live_pipeline import LivePipeline
from realtime.pipeline.processor import FrameProcessor
from realtime.pipeline.runners import file_packets
from realtime.stages.tracker import TrackerConfig

__all__ = ["FaceLandmarker", "pipeline_config"]

log = logging.getLogger(__name__)

RATE_HZ = Range(0, 1000, lo_open=True)  # --rate's range
CHANNELS = ("rgb", "bgr")


def pipeline_config(weights: str | Path | None = None, *, detector: str = DEFAULT_DETECTOR, device: str = "cpu",
                    backend: str = "auto", detector_backend: str = "auto", focal_px: float | None = None,
                    hfov: float = 60.0, face_model: str | Path | np.ndarray | None = None,
                    pose_source: str = "pnp", min_confidence: float | None = None,
                    turned_search: bool = True) -> PipelineConfig:
    """The ``PipelineConfig`` of these options, each named and defaulted like the video command
    line's flag (``--weights``, ``--detector``, ..., ``--min-confidence``): ``weights`` None is
    the bundled model, "fast" its faster, less accurate student (``realtime.core.assets.BUNDLED_WEIGHTS``),
    ``face_model`` None the shipped mean face (else a (K, 3) array or its .npy file), ``focal_px``
    given wins over ``hfov``, ``turned_search`` False is ``--no-turned-search``. Values
    outside the flags' ranges are a UserError.

    >>> config = pipeline_config(hfov=70)
    >>> config.weights.name, config.hfov_deg, config.backend
    ('rcn68_faces.safetensors', 70.0, 'auto')
    >>> pipeline_config(hfov=200)
    Traceback (most recent call last):
    realtime.core.errors.UserError: hfov must be (0, 180), got 200.0
    """
    weights = model_file(None if weights is None else weights_path(weights), lambda: LANDMARKS_68,
                         "no landmark weights given", "weights")
    if focal_px is not None:
        FOCAL_PX.check(float(focal_px), "focal_px")
    HFOV_DEG.check(float(hfov), "hfov")
    tracker = TrackerConfig()
    if min_confidence is not None:
        tracker = replace(tracker, min_confidence=SCORE.check(float(min_confidence), "min_confidence"))
    if face_model is None:
        face_model = "auto"
    elif isinstance(face_model, (str, Path)):
        model_file(face_model, lambda: None, "", "face_model")
        face_model = load_face_model(face_model)
    return PipelineConfig(weights, detector, device, tracker=tracker, face_model_3d=face_model,
                          focal_px=None if focal_px is None else float(focal_px), hfov_deg=float(hfov),
                          pose_source=pose_source, backend=backend, detector_backend=detector_backend,
                          turned_search=bool(turned_search))


class FaceLandmarker:
    """Faces, 68 landmarks, per-point confidence, head pose and tracks, for a photo (call it) or a
    video, camera or folder (``track``).

    Keyword options are the video command line's flags, same names and defaults
    (``pipeline_config``): ``weights`` (a file, or "fast": the bundled faster, less accurate model),
    ``detector`` ("both", "short" or "full"), ``detector_backend``, ``device`` ("cpu", "cuda"), ``backend`` ("auto": the fastest landmark
    backend whose points stay within 0.1 crop pixel of eager fp32, decided once per machine and
    model and then cached; "eager" starts at once), ``focal_px`` or ``hfov`` (the camera, for head
    pose), ``face_model``, ``pose_source`` ("pnp" or "head"), ``min_confidence`` (re-detect
    threshold), ``turned_search`` (False: detect faces upright only, ``--no-turned-search``) and
    ``rate`` (frames a second given to a folder's images). The model and detector
    are loaded once, here; every call and every ``track`` shares them.

    >>> landmarker = FaceLandmarker(backend="eager", hfov=50)
    >>> landmarker.num_points
    68
    """

    def __init__(self, weights: str | Path | None = None, *, detector: str = DEFAULT_DETECTOR, device: str = "cpu",
                 backend: str = "auto", detector_backend: str = "auto", focal_px: float | None = None,
                 hfov: float = 60.0, face_model: str | Path | np.ndarray | None = None, pose_source: str = "pnp",
                 min_confidence: float | None = None, turned_search: bool = True,
                 rate: float = DEFAULT_FOLDER_RATE_HZ) -> None:
        self.config = pipeline_config(weights, detector=detector, device=device, backend=backend,
                                      detector_backend=detector_backend, focal_px=focal_px, hfov=hfov,
                                      face_model=face_model, pose_source=pose_source, min_confidence=min_confidence,
                                      turned_search=turned_search)
        self.rate = RATE_HZ.check(float(rate), "rate")
        self._processor = FrameProcessor.from_config(self.config)

    @property
    def num_points(self) -> int:
        """Landmarks per face (68 for the bundled model; iBUG 300-W order)."""
        return self._processor.landmarker.num_points

    def __call__(self, image: str | Path | np.ndarray | object, *, channels: str = "rgb") -> list[FaceResult]:
        """The faces of one picture, each found afresh (a photo is a still: no tracks or smoothing
        carried over from the previous call), in detection order with track ids 0, 1, ...

        ``image`` is a file path, a PIL image, or an (H, W, 3) / (H, W, 4) / (H, W) uint8 or uint16
        array whose channel order ``channels`` names: "rgb" (the default) or "bgr". RGB is the
        default because it is what PIL, PyAV, imageio, scikit-image, matplotlib and MediaPipe give
        and what this pipeline runs on; OpenCV's ``imread`` and ``VideoCapture`` give BGR, so pass
        ``channels="bgr"`` with their arrays (a swapped order raises nothing: it only costs
        accuracy). PIL images are RGB by definition and ignore ``channels``.

        >>> landmarker = FaceLandmarker()
        >>> faces = landmarker(DEMO_PHOTO)                # a path
        >>> import cv2
        >>> bgr = cv2.imread(str(DEMO_PHOTO))             # OpenCV reads BGR
        >>> from_bgr = landmarker(bgr, channels="bgr")
        >>> bool(np.array_equal(from_bgr[0].points, faces[0].points))
        True
        >>> from PIL import Image                         # PIL's JPEG decoder may differ by a grey level
        >>> from_pil = landmarker(Image.open(DEMO_PHOTO))
        >>> float(np.abs(from_pil[0].points - faces[0].points).max()) < 0.5
        True
        >>> pose = faces[0].pose                           # degrees; a near-frontal portrait
        >>> all(abs(angle) < 30 for angle in (pose.yaw_deg, pose.pitch_deg, pose.roll_deg))
        True
        """
        name, rgb = _as_rgb(image, channels)
        return self._processor(CapturedFrame(0, 0.0, rgb, name, still=True)).faces

    def track(self, source: str | Path | int, *, stills: bool | None = None, width: int | None = None,
              height: int | None = None, fps: float | None = None, keep_stored: bool = False) -> Iterator[FramePacket]:
        """One ``FramePacket`` per frame of ``source``, in order: a video file, a camera (its index,
        or a ``/dev/video*`` path), a folder of images (sorted by name, at ``rate`` frames a second)
        or one image. Faces keep their ``track_id`` from frame to frame; points and pose are
        smoothed per track (One Euro, on the frames' timestamps). Each call starts its own tracks.

        Files are processed losslessly, every frame in order; a camera runs live (newest frame
        wins: frames that arrive while one is processed are dropped and counted in
        ``packet.dropped``; while faces are tracked, the detector runs beside the frames and a
        later frame takes its detections, ``realtime.pipeline.detect_ahead``), with
        ``width``/``height``/``fps`` as requests to the driver. Stop early
        by leaving the loop: the file or camera is released when the generator is closed.

        ``stills`` None takes the command line's rule: a folder's images are independent pictures
        (each detected afresh, ids from 0 in each), a video's frames are tracked. True or False
        forces it (False tracks across a folder that holds the frames of one video). An image of
        a folder that cannot be read yields a packet with ``skipped`` set to the reason (and no
        faces), logged as a warning; the folder goes on.

        A video is read turned to its display rotation (phone footage: docs/rotation.md), so points
        are in the frame players show; ``keep_stored`` keeps the pixels as stored. Each packet's
        ``width``, ``height``, ``rotation_deg`` and ``mirrored`` say which frame its points are in.

        >>> landmarker = FaceLandmarker()
        >>> ids = set()
        >>> for packet in landmarker.track(DEMO_CLIP):   # 300 frames, one face
        ...     ids.update(face.track_id for face in packet.faces)
        >>> packet.frame_id, sorted(ids)
        (299, [0])
        >>> sorted(packet.to_dict())
        ['dropped', 'faces', 'frame_id', 'height', 'mirrored', 'rotation_deg', 'source', 't_capture', 'timings_ms', 'width']
        """
        processor = FrameProcessor.from_config(self.config, self._processor.landmarker, self._processor.detector)
        spec = source if isinstance(source, int) else str(source)
        opened = open_source(spec, rate_hz=self.rate, width=width, height=height, fps=fps, keep_stored=keep_stored)
        try:
            if opened.is_live:
                with LivePipeline(opened, processor) as live:
                    yield from live
                return
            process = processor if stills is None else lambda frame: processor(frame._replace(still=stills))
            for packet in file_packets(opened, process, self.config.queue_size):  # decoded on a thread ahead
                if packet.skipped:
                    log.warning("skipped %s: %s", packet.source, packet.skipped)
                yield packet
        finally:
            opened.close()


def _as_rgb(image: str | Path | np.ndarray | object, channels: str) -> tuple[str | None, np.ndarray]:
    """(name, (H, W, 3) uint8 RGB) of a path, a PIL image or an array in ``channels`` order."""
    if channels not in CHANNELS:
        raise UserError(f"channels must be one of {', '.join(CHANNELS)}, not {channels!r}")
    if isinstance(image, (str, Path)):
        return str(image), read_image(image)
    if type(image).__module__.startswith("PIL."):  # PIL needs no import here: an image of it converts itself
        return getattr(image, "filename", None) or None, np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        return None, to_rgb(image, channels.upper())
    raise UserError(f"expected an image path, a numpy array or a PIL image, not {type(image).__name__}")
