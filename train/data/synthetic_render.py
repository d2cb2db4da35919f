"""Draw one synthetic face: a face-like object with five exactly known landmarks (mtfl5 layout:
left_eye, right_eye, nose, mouth_left, mouth_right) on a cluttered, occluded, degraded background.

numpy + cv2 only. Image coordinates are (x, y) pixels with pixel centres at integers.

Face model. A face lives in a frame (u, v, h): u across the face, v down it, in units of the
frontal eye distance (eyes at u = -0.5 / +0.5, v = 0), h the height above a vertical cylinder of
radius R (the head). Pseudo-yaw turns the cylinder: x = (R + h) sin(u / R + yaw), y = v, so parts
near the silhouette are compressed and the protruding nose tip shifts towards it. A similarity
(roll, scale, shift) then places the face in the image. Each landmark is the image of one model
point: the pupil centres (not the eye centres: the gaze moves the pupil inside the eye), the
centre of the nose-tip highlight and the two sharp vertices where the lips meet. Round parts are
drawn with the local linearisation of the map about their centre, so a drawn disc is centred on
its landmark exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from realtime.geometry.crops import face_box_from_points
from realtime.geometry.layouts import get_layout
from train.data.synthetic_parts import (Eye, Mapper, Mouth, affine_mapper, draw_eye, draw_mouth,
                                   mouth_corners, sample_eye, sample_gaze, sample_mouth)
from train.data.synthetic_scene import Canvas, background, circle, clutter, degrade, disc, occluders, rotation

# The class attribute is a bin of mouth width / eye distance, drawn from separated ranges.
CLASS_EDGES = (0.76, 0.96)
CLASS_RANGES = ((0.60, 0.72), (0.80, 0.92), (1.00, 1.12))
MAX_YAW_DEG = 30.0
MAX_ROLL_DEG = 45.0
_T = np.linspace(-1.0, 1.0, 15)
_ALL_VISIBLE = np.ones(5, bool)


@dataclass(frozen=True)
class RenderOptions:
    """Which nuisances to draw; all off gives a clean face on a flat background (for tests)."""

    clutter: bool = True       # noise-texture background, random shapes and lines
    distractors: bool = True   # eye-like and mouth-like look-alikes in the clutter
    occluders: bool = True     # rectangles, bars and blobs, often over a landmark
    degrade: bool = True       # lighting gradient, contrast, gamma, blur, sensor noise


CLEAN = RenderOptions(clutter=False, distractors=False, occluders=False, degrade=False)


@dataclass(frozen=True)
class Head:
    """The cylinder head and its placement: face frame (u, v, h) -> image (x, y)."""

    radius: float
    yaw: float          # radians
    lin: np.ndarray     # (2, 2) scale x rotation
    offset: np.ndarray  # (2,)

    def project(self, uv: np.ndarray, h: float = 0.0) -> np.ndarray:
        """(N, 2) face-frame points at height h -> (N, 2) image points."""
        ang = np.minimum(np.maximum(uv[:, 0] / self.radius + self.yaw, -np.pi / 2), np.pi / 2)
        xy = np.empty_like(uv, dtype=np.float64)
        xy[:, 0] = (self.radius + h) * np.sin(ang)
        xy[:, 1] = uv[:, 1]
        return xy @ self.lin.T + self.offset

    def flat(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) -> (N, 2) without the cylinder (neck, body, hair mass)."""
        return uv @ self.lin.T + self.offset

    def mapper(self, u: float, v: float, h: float) -> Mapper:
        """A local frame with origin (u, v) at height h."""
        origin = np.array([u, v])
        return lambda p: self.project(p + origin, h)

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.lin))))


@dataclass(frozen=True)
class Face:
    """Everything about one face: geometry (face units) and grey levels."""

    head: Head
    skin: float
    hair: float
    eye: Eye
    gaze: np.ndarray            # (2,)
    brow_v: float
    brow: float
    nose: tuple[float, float, float]  # u, v, h of the tip
    nose_w: float
    mouth_uvh: tuple[float, float, float]
    mouth: Mouth
    face_v: tuple[float, float, float]  # centre v, extent up, extent down
    jaw: float                          # how much the lower face narrows
    has_hair: bool
    body: float

    def landmarks(self) -> np.ndarray:
        """(5, 2) float64 image points: pupils, nose tip, mouth corners."""
        head, (gu, gv) = self.head, self.gaze
        eyes = head.project(np.array([[-0.5 + gu, gv], [0.5 + gu, gv]]))
        nose = head.project(np.array([self.nose[:2]]), self.nose[2])
        mu, mv, mh = self.mouth_uvh
        mouth = head.project(mouth_corners(self.mouth) + np.array([mu, mv]), mh)
        return np.concatenate([eyes, nose, mouth])


def _mouth_width(ratio: float, radius: float, yaw: float, gaze_u: float, mouth_u: float,
                 mouth_h: float) -> float:
    """Face-frame mouth width whose projected length is ``ratio`` x the projected eye distance."""
    eye_dist = 2 * radius * np.cos(gaze_u / radius + yaw) * np.sin(0.5 / radius)
    s = ratio * eye_dist / (2 * (radius + mouth_h) * np.cos(mouth_u / radius + yaw))
    return float(2 * radius * np.arcsin(min(s, 1.0)))


def sample_face(rng: np.random.Generator) -> Face:
    """A face at unit scale, roll applied, not yet placed (offset 0)."""
    radius = rng.uniform(1.05, 1.3)
    yaw = np.deg2rad(rng.uniform(-MAX_YAW_DEG, MAX_YAW_DEG))
    head = Head(radius, yaw, rotation(np.deg2rad(rng.uniform(-MAX_ROLL_DEG, MAX_ROLL_DEG))), np.zeros(2))
    skin = rng.uniform(75, 200)
    dark_hair = rng.random() < 0.7
    hair = rng.uniform(5, 70) if dark_hair else rng.uniform(120, 230)
    eye = sample_eye(rng, skin)
    gaze = sample_gaze(rng, eye)
    mouth_uvh = (rng.uniform(-0.03, 0.03), rng.uniform(1.0, 1.25), 0.08)
    ratio = rng.uniform(*CLASS_RANGES[rng.integers(3)])
    width = _mouth_width(ratio, radius, yaw, gaze[0], mouth_uvh[0], mouth_uvh[2])
    return Face(head=head, skin=skin, hair=hair, eye=eye, gaze=gaze, brow_v=-rng.uniform(0.28, 0.4),
                brow=hair if dark_hair else rng.uniform(20, 90),
                nose=(rng.uniform(-0.03, 0.03), rng.uniform(0.5, 0.68), rng.uniform(0.25, 0.45)),
                nose_w=rng.uniform(0.12, 0.18), mouth_uvh=mouth_uvh, mouth=sample_mouth(rng, width, skin),
                face_v=(rng.uniform(0.2, 0.35), rng.uniform(1.45, 1.65), rng.uniform(1.35, 1.55)),
                jaw=rng.uniform(0.15, 0.5),
                has_hair=rng.random() < 0.85, body=rng.uniform(10, 245))


def eyes_mouth_box(points: np.ndarray) -> tuple[float, float, float]:
    """The 2016 "eyes_mouth" face box (cx, cy, side) of mtfl5 points (5, 2)."""
    return face_box_from_points(points, _ALL_VISIBLE, get_layout("mtfl5"))


def place(face: Face, rng: np.random.Generator, size: int) -> Face:
    """Scale and shift the face so its eyes_mouth box is 55-92% of the image and mostly inside."""
    cx, cy, side = eyes_mouth_box(face.landmarks())
    side_px = size * rng.uniform(0.55, 0.92)
    margin = 0.06 * size
    centre = rng.uniform(side_px / 2 - margin - 0.5, size - 0.5 - side_px / 2 + margin, 2)
    scale = side_px / side
    head = replace(face.head, lin=scale * face.head.lin, offset=centre - scale * np.array([cx, cy]))
    return replace(face, head=head)


def _outline(face: Face, n: int = 48) -> np.ndarray:
    """(n, 2) face-frame outline: an egg whose sides reach the cylinder's silhouette."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    vc, up, down = face.face_v
    s = np.sin(theta)
    u = face.head.radius * np.pi / 2 * np.cos(theta) * (1 - face.jaw * np.clip(s, 0, 1) ** 2)
    return np.stack([u, vc + np.where(s > 0, down, up) * s], 1)


def draw_head(canvas: Canvas, face: Face, rng: np.random.Generator) -> None:
    """Body, hair mass, ears, skin, fringe."""
    head, r = face.head, face.head.radius
    vc, up, down = face.face_v
    chin = vc + down
    shoulders = np.array([[-0.45, chin + 0.3], [0.45, chin + 0.3], [2.2, chin + 0.9], [2.6, chin + 4],
                          [-2.6, chin + 4], [-2.2, chin + 0.9]]) * [r, 1]
    neck = np.array([[-0.4, chin - 0.5], [0.4, chin - 0.5], [0.45, chin + 0.5], [-0.45, chin + 0.5]]) * [r, 1]
    canvas.fill(head.flat(shoulders), face.body)
    canvas.fill(head.flat(neck), face.skin * 0.8)
    if face.has_hair:
        canvas.fill(head.flat(circle((0.0, vc - 0.15), (r * 1.13, up * 1.08))), face.hair)
        if rng.random() < 0.35:  # long hair
            fall = np.array([[-1.13, vc - 0.2], [1.13, vc - 0.2], [1.2, chin + 0.4], [-1.2, chin + 0.4]])
            fall[:, 0] *= r
            canvas.fill(head.flat(fall), face.hair)
    for side in (-1, 1):  # ears at the silhouette, half hidden by the face
        ang = np.clip(side * np.pi / 2 + head.yaw, -np.pi / 2, np.pi / 2)
        canvas.fill(head.flat(circle((r * np.sin(ang) + side * 0.06, 0.25), (0.13, 0.28))), face.skin * 0.9)
    outline = _outline(face)
    canvas.fill(head.project(outline), face.skin)
    if face.has_hair:
        top = outline[len(outline) // 2:]  # from the left side over the top to the right side
        line_v = rng.uniform(-1.0, -0.65)
        u = np.linspace(top[-1, 0], top[0, 0], 12)
        wave = rng.uniform(-0.08, 0.08) * np.sin(u * rng.uniform(3, 7))
        v = line_v + wave + (vc - 0.25 - line_v) * (np.abs(u) / np.abs(u).max()) ** 4
        canvas.fill(head.project(np.concatenate([top, np.stack([u, v], 1)])), face.hair)


def draw_brows(canvas: Canvas, face: Face) -> None:
    x = _T * face.eye.half_w * 1.25
    arch = -0.06 * (1 - _T ** 2)
    for side in (-1, 1):
        half = 0.03 * (1 - 0.5 * np.clip(-side * _T, 0, 1))  # thinner towards the outer end
        band = np.concatenate([np.stack([x, arch - half], 1), np.stack([x, arch + half], 1)[::-1]])
        canvas.fill(face.head.mapper(side * 0.5, face.brow_v, 0.05)(band), face.brow)


def draw_nose(canvas: Canvas, face: Face, rng: np.random.Generator) -> None:
    """Side shade and ridge, wings, bulb, nostrils, and the tip highlight (the landmark)."""
    head, px = face.head, face.head.scale
    nu, nv, nh = face.nose
    w = face.nose_w
    tip = head.project(np.array([[nu, nv]]), nh)[0]
    bridge = head.project(np.array([[nu * 0.3, 0.1]]), 0.1)[0]
    shade_side = 1.0 if head.yaw > 0 else -1.0
    wing = head.project(np.array([[nu + shade_side * w * 1.1, nv + 0.02]]), nh * 0.3)[0]
    canvas.fill(np.stack([bridge, tip, wing]), face.skin * rng.uniform(0.8, 0.93))
    canvas.stroke(np.stack([bridge, tip]), face.skin * rng.uniform(0.75, 0.9), 0.03 * px)
    def blob(u: float, v: float, h: float, radii: float | tuple[float, float], value: float) -> None:
        canvas.fill(disc(head.mapper(u, v, h), np.zeros(2), radii), value)

    wing_tone, nostril = face.skin * rng.uniform(0.78, 0.9), face.skin * rng.uniform(0.2, 0.45)
    for side in (-1, 1):
        blob(nu + side * 0.75 * w, nv + 0.01, nh * 0.3, (0.08, 0.065), wing_tone)
    blob(nu, nv + 0.01, nh * 0.9, (0.09, 0.07), face.skin * rng.uniform(1.0, 1.1))
    for side in (-1, 1):
        blob(nu + side * 0.5 * w, nv + 0.075, nh * 0.45, (0.05, 0.025), nostril)
    blob(nu, nv, nh, 0.045, min(255.0, face.skin * rng.uniform(1.25, 1.45) + 15))  # centred on the landmark


def draw_face(canvas: Canvas, face: Face, rng: np.random.Generator) -> None:
    """Head, brows, eyes, nose, mouth, in that order."""
    head, px = face.head, face.head.scale
    draw_head(canvas, face, rng)
    draw_brows(canvas, face)
    for side in (-1, 1):
        draw_eye(canvas, head.mapper(side * 0.5, 0.0, 0.0), face.eye, face.gaze, px)
    draw_nose(canvas, face, rng)
    mu, mv, mh = face.mouth_uvh
    draw_mouth(canvas, head.mapper(mu, mv, mh), face.mouth, px)


def _off_face(rng: np.random.Generator, size: int, face: Face) -> np.ndarray:
    """(2,) a random point of (a little more than) the image, tried a few times to miss the face."""
    inverse = np.linalg.inv(face.head.lin)
    vc, up, down = face.face_v
    for _ in range(8):
        p = rng.uniform(-0.05, 1.05, 2) * size
        u, v = inverse @ (p - face.head.offset)
        if (u / (face.head.radius + 0.4)) ** 2 + ((v - vc) / ((down if v > vc else up) + 0.4)) ** 2 > 1:
            break
    return p


def draw_distractors(canvas: Canvas, rng: np.random.Generator, size: int, face: Face) -> None:
    """Look-alikes at the face's scale, off the face (on background, hair or body): single eyes,
    eye pairs with brows, mouths and dark blobs."""
    px = face.head.scale
    for _ in range(rng.integers(2, 7)):
        kind = rng.choice(4, p=[0.4, 0.15, 0.3, 0.15])
        lin = px * rng.uniform(0.7, 1.2) * rotation(rng.uniform(-1, 1)) @ np.diag([rng.uniform(0.6, 1.0), 1.0])
        m = affine_mapper(lin, _off_face(rng, size, face))
        tone = rng.uniform(70, 210)
        if kind == 0 or kind == 1:
            if rng.random() < 0.5:
                canvas.fill(m(circle((0.0, 0.0), (0.5 + kind * 0.6, 0.35))), tone)
            eye = sample_eye(rng, tone)
            for dx in ((0.0,) if kind == 0 else (-0.5, 0.5)):
                draw_eye(canvas, lambda p, dx=dx: m(p + [dx, 0.0]), eye, sample_gaze(rng, eye), px)
                if kind == 1:
                    canvas.fill(m(circle((dx, -0.33), (0.3, 0.035))), rng.uniform(5, 80))
        elif kind == 2:
            draw_mouth(canvas, m, sample_mouth(rng, rng.uniform(0.55, 1.15), tone), px)
        else:
            r = rng.uniform(0.04, 0.12)
            canvas.fill(disc(m, np.zeros(2), r * 2.2), tone)
            canvas.fill(disc(m, np.zeros(2), r), rng.uniform(0, 40))


def render(rng: np.random.Generator, size: int = 96, options: RenderOptions = RenderOptions()
           ) -> tuple[np.ndarray, np.ndarray]:
    """One image (size, size) uint8 grey and its landmarks (5, 2) float64 (x, y) pixels.

    The face and the scene draw from separate streams split off ``rng``, so the same generator
    state gives the same face whatever the options (CLEAN shows the face of the full image).
    """
    face_rng, scene_rng = rng.spawn(2)
    face = place(sample_face(face_rng), face_rng, size)
    points = face.landmarks()
    canvas = Canvas(background(scene_rng, size, options.clutter))
    if options.clutter:
        clutter(canvas, scene_rng, size)
    draw_face(canvas, face, face_rng)
    if options.distractors:
        draw_distractors(canvas, scene_rng, size, face)
    if options.occluders:
        occluders(canvas, scene_rng, size, points)
    image = canvas.result()
    if options.degrade:
        image = degrade(image, scene_rng)
    return image, points
