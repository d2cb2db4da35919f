"""The bundled demo clip: ``assets/demo.mp4`` and its ground truth ``assets/demo_truth.json``.

    python -m train.tools.make_demo_clip                    # rebuild both (needs the democlip extra: scikit-image, av)
    python -m train.tools.make_demo_clip --label-astronaut  # relabel assets/astronaut_68.pts (needs the teacher extra)

scikit-image's astronaut portrait (NASA, public domain, 512x512) is warped into 640x480 frames by
one homography per frame, ``H = T(anchor + (tx, ty)) . R(angle) . S(scale) . P(yaw, pitch) .
T(-face_centre)``: in-plane rotation, scale and translation of smooth sums of sines, and a
perspective tilt (the picture plane turned by yaw and pitch about the face centre, seen from
``FOCAL_FACES`` face widths). Lighting drifts (gain, gamma, red/blue white balance) and every
frame gets fresh Gaussian sensor noise. The first ``still_s`` seconds are a still segment:
identical geometry and lighting, only the noise changes, so the spread of a model's points there
is its jitter. Motion and lighting ramp in from zero velocity after it (smoothstep).

Ground truth: the astronaut's 68 points (ibug68), labelled once by the teacher
(``train/labels/teacher.py``) and committed as ``assets/astronaut_68.pts`` (+ ``.teacher.json``, the
teacher's box), so rebuilding needs no dlib; each frame's points are those points mapped by that
frame's H. ``cv2.warpPerspective`` samples destination pixel centres (integer coordinates) at
``H^-1`` of them, so H maps pixel-centre coordinates to pixel-centre coordinates: the project's
convention, no half-pixel shifts.

Everything but the H.264 bit stream is a function of the seed (the noise of frame i is drawn from
``default_rng([seed, i])``). Frame i is stamped ``t = round(1000 i / fps) / 1000`` s (the writer's
millisecond time base), and the truth file gives the same ``t``. ``train.labels.democlip`` holds
the astronaut, its points and ``load_truth``, which reads the truth file back.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.core.assets import ASTRONAUT_PTS, DEMO_CLIP
from realtime.core.atomic import json_text, sha256, write_text_atomic
from realtime.core.cliargs import Parser, number
from realtime.core.errors import UserError, run_command
from realtime.core.outpaths import Output, prepare_outputs
from realtime.io.video_out import VideoWriter
from train.labels.democlip import astronaut, astronaut_points
from train.labels.teacher import SUB_DETECTORS, Teacher, pts_text

# the format tag the committed truth carries: the tool's module name when v1 was made, kept so the file stays as it is
GENERATOR = "train.democlip v1"
FOCAL_FACES = 4.0  # viewing distance of the tilted picture plane, in face widths
NOISE_SIGMA = 3.0  # sensor noise, grey levels (0-255)
NOISE_BLOB_PX = 3  # grain size of the sensor noise
PAD_PX = 256  # blurred mirror border around the portrait
BLUR_SIGMA_PX = 30.0


@dataclass(frozen=True)
class FrameParams:
    """Geometry and lighting of one frame (angles in degrees, translations in frame pixels)."""

    angle_deg: float
    scale: float
    tx: float
    ty: float
    yaw_deg: float
    pitch_deg: float
    gain: float
    gamma: float
    rgb_gain: tuple[float, float, float]


@dataclass(frozen=True)
class ClipSpec:
    width: int = 640
    height: int = 480
    fps: float = 30.0
    seconds: float = 10.0
    still_s: float = 2.0
    seed: int = 0
    base_scale: float = 1.6
    noise_sigma: float = NOISE_SIGMA

    @property
    def num_frames(self) -> int:
        return int(round(self.seconds * self.fps))

    @property
    def still_frames(self) -> tuple[int, int]:
        """Half-open frame range [first, end) of the still segment."""
        return 0, min(self.num_frames, int(round(self.still_s * self.fps)))

    def timestamp(self, index: int) -> float:
        return round(1000 * index / self.fps) / 1000


# Motion: each parameter is a sum of sines (amplitude, frequency Hz) with seeded phases.
MOTION = {
    "angle_deg": ((11.0, 0.23), (4.0, 0.61)),
    "log_scale": ((0.12, 0.17), (0.04, 0.53)),
    "tx": ((55.0, 0.19), (12.0, 0.71)),
    "ty": ((28.0, 0.29), (8.0, 0.83)),
    "yaw_deg": ((18.0, 0.21), (4.0, 0.67)),
    "pitch_deg": ((10.0, 0.31),),
    "log_gain": ((0.18, 0.13), (0.05, 0.47)),
    "log_gamma": ((0.15, 0.09),),
    "log_red": ((0.06, 0.11),),
    "log_blue": ((0.06, 0.07),),
}


def frame_params(spec: ClipSpec, index: int) -> FrameParams:
    """The warp and lighting of frame ``index``: constant through the still segment, then each
    signal ramps in over 0.6 s (smoothstep envelope, so velocity is continuous and zero at the
    join)."""
    phases = np.random.default_rng(spec.seed).uniform(0, 2 * np.pi, (len(MOTION), 2))
    tau = max(0.0, index / spec.fps - spec.still_frames[1] / spec.fps)
    u = min(tau / 0.6, 1.0)
    env = u * u * (3 - 2 * u)
    v = {}
    for (name, waves), phase in zip(MOTION.items(), phases):
        v[name] = env * sum(a * math.sin(2 * math.pi * f * tau + p) for (a, f), p in zip(waves, phase))
    return FrameParams(angle_deg=v["angle_deg"], scale=spec.base_scale * math.exp(v["log_scale"]),
                       tx=v["tx"], ty=v["ty"], yaw_deg=v["yaw_deg"], pitch_deg=v["pitch_deg"],
                       gain=math.exp(v["log_gain"]), gamma=math.exp(v["log_gamma"]),
                       rgb_gain=(math.exp(v["log_red"]), 1.0, math.exp(v["log_blue"])))


def homography(params: FrameParams, face_centre: np.ndarray, anchor: np.ndarray, face_width: float) -> np.ndarray:
    """(3, 3) source pixel centres -> frame pixel centres (module docstring)."""
    def translate(x: float, y: float) -> np.ndarray:
        return np.array([[1, 0, x], [0, 1, y], [0, 0, 1]], dtype=np.float64)

    yaw, pitch = math.radians(params.yaw_deg), math.radians(params.pitch_deg)
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    r = ry @ rx
    d = FOCAL_FACES * face_width  # camera on the plane's normal, d pixels away, focal length d
    tilt = np.array([[r[0, 0], r[0, 1], 0], [r[1, 0], r[1, 1], 0], [r[2, 0] / d, r[2, 1] / d, 1]])
    a = math.radians(params.angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    scale = np.diag([params.scale, params.scale, 1.0])
    h = translate(anchor[0] + params.tx, anchor[1] + params.ty) @ rot @ scale @ tilt @ translate(*-face_centre)
    return h / h[2, 2]


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(K, 2) -> (K, 2) by the projective map ``h``."""
    p = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ h.T
    return p[:, :2] / p[:, 2:3]


def sensor_noise(rng: np.random.Generator, height: int, width: int, sigma: float) -> np.ndarray:
    """(H, W) float32 luma noise of standard deviation ``sigma``, drawn on a grid NOISE_BLOB_PX
    times coarser and upsampled (cubic): grain of a few pixels, like a webcam's after its own
    denoising and compression. Per-pixel noise would not survive H.264: at the crf that keeps the
    clip under 1.5 MB the encoder repeats the previous frame in still areas (decoded
    frame-to-frame difference 0.35 grey levels for sigma 3); this grain keeps about 2.3."""
    coarse = rng.standard_normal((-(-height // NOISE_BLOB_PX), -(-width // NOISE_BLOB_PX)), dtype=np.float32)
    fine = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return fine * np.float32(sigma / max(float(fine.std()), 1e-6))


def padded_source(image: np.ndarray, pad: int = PAD_PX) -> np.ndarray:
    """``image`` inside a ``pad``-pixel border of its own mirror image, blurred beyond recognition
    and feathered in over 16 px: the frame's corners can leave the portrait (wide turns) without
    showing a sharp mirrored hair line or half face. Pixel (x, y) of ``image`` is (x + pad, y + pad)."""
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101).astype(np.float32)
    blurred = cv2.GaussianBlur(big, (0, 0), BLUR_SIGMA_PX)
    h, w = image.shape[:2]
    ramp = np.minimum(np.arange(max(h, w)) + 1, 16) / 16.0
    inside = np.zeros(big.shape[:2], np.float32)
    inside[pad:pad + h, pad:pad + w] = np.minimum.outer(np.minimum(ramp[:h], ramp[:h][::-1]),
                                                        np.minimum(ramp[:w], ramp[:w][::-1]))
    out = inside[:, :, None] * big + (1 - inside[:, :, None]) * blurred
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render(source: np.ndarray, h: np.ndarray, params: FrameParams, size: tuple[int, int],
           noise_sigma: float, rng: np.random.Generator | None, pad: int = 0) -> np.ndarray:
    """One (H, W, 3) uint8 RGB frame: warp, lighting, then sensor noise (none when rng is None).
    ``h`` maps unpadded source pixels to frame pixels; ``source`` carries a ``pad`` border."""
    shift = np.array([[1, 0, -pad], [0, 1, -pad], [0, 0, 1]], dtype=np.float64)
    warped = cv2.warpPerspective(source, h @ shift, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT_101)
    v = (warped.astype(np.float32) / 255.0) ** params.gamma
    v *= np.float32(params.gain) * np.float32(params.rgb_gain)
    v *= 255.0
    if rng is not None and noise_sigma > 0:
        v += sensor_noise(rng, v.shape[0], v.shape[1], noise_sigma)[:, :, None]
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


class Clip:
    """Frames and ground truth of one ``ClipSpec``, frame by frame (any order)."""

    def __init__(self, spec: ClipSpec, source: np.ndarray | None = None, points: np.ndarray | None = None) -> None:
        self.spec = spec
        self.source = padded_source(astronaut() if source is None else source)
        self.points = astronaut_points() if points is None else np.asarray(points, np.float64)
        lo, hi = self.points.min(0), self.points.max(0)
        self.face_centre = (lo + hi) / 2
        self.face_width = float(hi[0] - lo[0])
        self.anchor = np.array([spec.width / 2, spec.height * 0.46])

    def params(self, index: int) -> FrameParams:
        return frame_params(self.spec, index)

    def homography(self, index: int) -> np.ndarray:
        return homography(self.params(index), self.face_centre, self.anchor, self.face_width)

    def truth_points(self, index: int) -> np.ndarray:
        return apply_homography(self.homography(index), self.points)

    def frame(self, index: int, noise: bool = True) -> np.ndarray:
        rng = np.random.default_rng([self.spec.seed, index]) if noise else None
        return render(self.source, self.homography(index), self.params(index),
                      (self.spec.width, self.spec.height), self.spec.noise_sigma, rng, PAD_PX)

    def truth_record(self, index: int) -> dict:
        p = self.params(index)
        motion = {k: round(v, 5) for k, v in asdict(p).items() if k not in ("gain", "gamma", "rgb_gain")}
        light = {"gain": round(p.gain, 5), "gamma": round(p.gamma, 5), "rgb_gain": [round(g, 5) for g in p.rgb_gain]}
        return {"index": index, "t": self.spec.timestamp(index), "motion": motion, "light": light,
                "homography": [round(float(v), 9) for v in self.homography(index).ravel()],
                "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.truth_points(index)]}


def truth_text(clip: Clip, video_name: str, encoder: dict) -> str:
    """The truth file: a JSON object whose ``frames`` list holds one frame per line."""
    spec = clip.spec
    header = {
        "generator": GENERATOR, "layout": "ibug68", "video": video_name,
        "width": spec.width, "height": spec.height, "fps": spec.fps, "num_frames": spec.num_frames,
        "seconds": spec.num_frames / spec.fps, "still_frames": list(spec.still_frames),
        "seed": spec.seed, "noise_sigma": spec.noise_sigma,
        "conventions": "points (x, y) in frame pixels, pixel centres at integer coordinates (OpenCV); "
                       "still_frames is the half-open range [first, end); t in seconds (the video's pts); "
                       "homography maps astronaut pixels to frame pixels, row-major 3x3; angles in degrees",
        "source": {"image": "skimage.data.astronaut() (NASA, public domain), 512x512",
                   "points": ASTRONAUT_PTS.name, "face_centre": [round(float(v), 3) for v in clip.face_centre],
                   "face_width": round(clip.face_width, 3), "anchor": clip.anchor.tolist(),
                   "focal_px": round(FOCAL_FACES * clip.face_width, 3)},
        "encoder": encoder,
    }
    head = json.dumps(header, indent=1)
    assert head.endswith("\n}")
    frames = ",\n".join(json.dumps(clip.truth_record(i), separators=(",", ":")) for i in range(spec.num_frames))
    return head[:-2] + ',\n "frames": [\n' + frames + "\n ]\n}\n"


def build(spec: ClipSpec, video: Path, truth: Path, crf: int = 24, preset: str = "slow") -> None:
    """Write the clip (H.264, atomically, via ``realtime.io.video_out.VideoWriter``) and its truth."""

    clip = Clip(spec)
    writer = VideoWriter(video, rate_hz=spec.fps, crf=crf, preset=preset)
    try:
        for index in range(spec.num_frames):
            writer.write(clip.frame(index), spec.timestamp(index))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    encoder = {"codec": "libx264", "pix_fmt": "yuv420p", "crf": crf, "preset": preset}
    write_text_atomic(truth, truth_text(clip, video.name, encoder))


def label_astronaut(out: Path = ASTRONAUT_PTS) -> None:
    """Label the astronaut once with the teacher: ``out`` (.pts) and ``.teacher.json`` beside it."""

    teacher = Teacher()
    faces = [f for f in teacher(astronaut()) if f.ok]
    if len(faces) != 1:
        raise UserError(f"expected the teacher to accept exactly one face in the astronaut, got {len(faces)}")
    face = faces[0]
    write_text_atomic(out, pts_text(face.points))
    side = {"image": "skimage.data.astronaut()", "image_size": [512, 512], "layout": "ibug68",
            "pts_convention": "1-based, as every 300-W file: subtract 1 for pixel centres at integers",
            "teacher": "dlib HOG frontal face detector + 68-point shape predictor", "dlib": teacher.dlib.__version__,
            "model": teacher.model_path.name, "model_sha256": sha256(teacher.model_path),
            "box_in_image": [round(v, 3) for v in face.box], "score": round(face.score, 4),
            "sub_detector": SUB_DETECTORS[face.sub_detector], "flip_nme": round(face.flip_nme, 4),
            "upsample": face.upsample}
    write_text_atomic(out.with_suffix(".teacher.json"), json_text(side))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = ClipSpec()

    p = Parser(prog="python -m train.tools.make_demo_clip", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEMO_CLIP), help="the H.264 clip (.mp4)")
    p.add_argument("--truth", help="ground truth .json (default: demo_truth.json beside --out)")
    p.add_argument("--seconds", type=number(float, 0, 600, lo_open=True), default=d.seconds, help="clip length")
    p.add_argument("--fps", type=number(float, 0, 240, lo_open=True), default=d.fps, help="frame rate (Hz)")
    p.add_argument("--still", type=number(float, 0, 600), default=d.still_s, help="seconds of still segment at the start")
    p.add_argument("--seed", type=number(int, 0), default=d.seed, help="seed of the motion")
    p.add_argument("--crf", type=number(int, 0, 51), default=24, help="x264 quality (lower: larger file)")
    p.add_argument("--preset", default="slow", help="x264 preset")
    p.add_argument("--label-astronaut", action="store_true",
                   help=f"relabel {ASTRONAUT_PTS.name} with the teacher (needs the teacher extra), then stop")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


def run(args: argparse.Namespace) -> int:
    if True:
        if args.label_astronaut:
            label_astronaut()
            print(f"wrote {ASTRONAUT_PTS} and {ASTRONAUT_PTS.with_suffix('.teacher.json').name}")
            return 0
        spec = ClipSpec(fps=args.fps, seconds=args.seconds, still_s=args.still, seed=args.seed)
        video = Path(args.out)
        truth = Path(args.truth) if args.truth else video.with_name("demo_truth.json")
        prepare_outputs([Output(video, "--out", (".mp4",)), Output(truth, "--truth", (".json",))])
        build(spec, video, truth, crf=args.crf, preset=args.preset)
    size_kb = video.stat().st_size / 1024
    print(f"wrote {video} ({spec.num_frames} frames, {spec.num_frames / spec.fps:.2f} s, {size_kb:.0f} KiB) and {truth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
