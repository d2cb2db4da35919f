"""Tracker: stable ids, re-detect policy, crops levelled by the eye line, lost and new faces."""
from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from realtime.geometry.crops import transform_points
from realtime.detect.detector import Detections, iou_matrix
from realtime.core.errors import UserError
from realtime.geometry.layouts import get_layout
from realtime.stages.tracker import FaceTracker, TrackerConfig, box_from_landmarks

cv2.setNumThreads(1)
MTFL = get_layout("mtfl5")
# left eye, right eye (as displayed), nose, mouth corners of an upright face about (0, 0), 60 px wide
FACE = np.array([[-15.0, -12.0], [15.0, -12.0], [0.0, 3.0], [-11.0, 18.0], [11.0, 18.0]])


def face_at(cx: float, cy: float, roll_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """(5, 2) MTFL points of FACE turned clockwise (as displayed) by ``roll_deg``."""
    t = math.radians(roll_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])  # y down: clockwise
    return FACE * scale @ rot.T + [cx, cy]


def detections_for(points_list: list[np.ndarray]) -> Detections:
    """BlazeFace-like detections: box around the points, keypoints 0/1 = subject's right/left eye."""
    boxes, kps = [], []
    for p in points_list:
        lo, hi = p.min(0) - 8, p.max(0) + 8
        boxes.append(np.concatenate([lo, hi]))
        kp = np.zeros((6, 2))
        kp[0], kp[1], kp[2], kp[3] = p[0], p[1], p[2], p[3:5].mean(0)
        kps.append(kp)
    n = len(points_list)
    return Detections(np.array(boxes).reshape(n, 4), np.linspace(0.9, 0.8, n), np.array(kps).reshape(n, 6, 2))


def test_box_from_landmarks_levels_the_eye_line():
    points = face_at(200, 150, roll_deg=25.0)
    (cx, cy, side), roll = box_from_landmarks(points, MTFL)
    assert roll == np.float64(roll) and abs(roll - 25.0) < 1e-9
    upright, _ = box_from_landmarks(face_at(200, 150), MTFL)
    np.testing.assert_allclose(side, upright[2], rtol=1e-9)  # rotation does not grow the box
    np.testing.assert_allclose(np.hypot(cx - 200, cy - 150), np.hypot(upright[0] - 200, upright[1] - 150))
    (_, _, side_unknown), roll_unknown = box_from_landmarks(points, None)
    assert roll_unknown == 0.0 and side_unknown > 0


def test_detect_then_track_with_stable_id_and_level_crops():
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=5, redetect_every_max=5))
    assert tracker.needs_detection()
    points = face_at(300, 200, roll_deg=20.0)
    rois = tracker.rois(detections_for([points]))
    assert [r.source for r in rois] == ["detection"] and rois[0].track_id == 0
    eyes = transform_points(points[:2], rois[0].matrix)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6 and eyes[0, 0] < eyes[1, 0]  # level, not flipped
    sources = []
    for frame in range(1, 12):
        points = face_at(300 + 3 * frame, 200, roll_deg=20.0 - frame)
        tracker.update({0: (points, np.full(5, 0.9))})
        detect = tracker.needs_detection()
        rois = tracker.rois(detections_for([points]) if detect else None)
        sources.append((detect, rois[0].source))
        assert [r.track_id for r in rois] == [0]
        eyes = transform_points(points[:2], rois[0].matrix)
        assert abs(eyes[0, 1] - eyes[1, 1]) < 0.6  # the roll is one frame (1 degree) behind
    assert [d for d, _ in sources] == [False] * 4 + [True] + [False] * 4 + [True, False]
    assert all(src == "landmarks" for _, src in sources)  # confident tracks keep landmark crops


def test_low_confidence_triggers_detection_which_reframes_only_a_face_off_its_crop():
    """An unsure track asks for the detector; a detection where its crop already is confirms the
    crop (no re-framing, no second landmark pass), one a third of a face away re-frames it."""
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(velocity_gain=0.0))
    points = face_at(100, 100)
    tracker.rois(detections_for([points]))
    tracker.update({0: (points, np.full(5, 0.9))})
    assert not tracker.needs_detection()
    tracker.update({0: (points, np.full(5, 0.1))})
    assert tracker.needs_detection()
    rois = tracker.rois(detections_for([points]))
    assert rois[0].track_id == 0 and rois[0].source == "landmarks"
    tracker.update({0: (points, np.full(5, 0.1))})
    rois = tracker.rois(detections_for([points + [20, 0]]))
    assert rois[0].track_id == 0 and rois[0].source == "detection"


def test_an_unsure_track_the_detector_keeps_finding_waits_longer_between_detections():
    """1, 2, 4, ... frames up to ``redetect_every`` while each round finds the face where its crop
    is; a round that misses it asks again on the next frame."""
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=4, redetect_every_max=4,
                                                                         min_confidence=0.5))
    points = face_at(200, 150)
    detected = []
    for frame in range(20):
        detect = tracker.needs_detection()
        detected.append(detect)
        missing = frame == 15
        rois = tracker.rois((Detections.empty() if missing else detections_for([points])) if detect else None)
        for roi in (tracker.refine(rois, {r.track_id: (points, np.full(5, 0.2)) for r in rois}) if detect else rois):
            tracker.update({roi.track_id: (points, np.full(5, 0.2))})  # unsure: 0.2 < 0.5
    frames = [i for i, d in enumerate(detected) if d]
    # 0 (first), +1, +2, +4, +4 (the cap); 15 misses it, so 16 asks again, then +2
    assert frames == [0, 1, 3, 7, 11, 15, 16, 18]
    assert tracker.track_ids == [0]


@pytest.mark.parametrize("roll_deg", [0.0, 30.0])
def test_an_unsure_track_whose_points_sit_off_the_detectors_centre_still_counts_as_framed(roll_deg):
    """A small face's landmark box may sit a third of a side from the detector's framing on every
    round (video_01): that offset is the face's, measured on its detection crop, so the unsure
    track still waits longer between rounds instead of asking on every frame."""
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=4, redetect_every_max=4,
                                                                         min_confidence=0.5))
    points = face_at(200, 150, roll_deg)
    t = math.radians(roll_deg)
    shifted = points + 0.33 * 60 * np.array([-math.sin(t), math.cos(t)])  # a third of a face below, in the face's frame
    detected = []
    for frame in range(20):
        detect = tracker.needs_detection()
        detected.append(detect)
        rois = tracker.rois(detections_for([points]) if detect else None)
        for roi in (tracker.refine(rois, {r.track_id: (shifted, np.full(5, 0.2)) for r in rois}) if detect else rois):
            tracker.update({roi.track_id: (shifted, np.full(5, 0.2))})
    assert [i for i, d in enumerate(detected) if d] == [0, 1, 3, 7, 11, 15, 19]
    assert tracker.track_ids == [0]


def test_a_track_that_slides_off_its_face_is_reframed_despite_its_offset():
    """The offset allowed for is the one measured on the detection crop: a crop that then slides
    a third of a face away is not framed like the detection any more, and takes the detector's crop."""
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=1, min_confidence=0.1,
                                                                         velocity_gain=0.0))
    points = face_at(200, 150)
    rois = tracker.rois(detections_for([points]))
    tracker.update({rois[0].track_id: (points + [0, 20], np.full(5, 0.9))})
    rois = tracker.rois(detections_for([points]))
    assert rois[0].source == "landmarks"  # the same offset as measured: framed
    tracker.update({rois[0].track_id: (points + [20, 20], np.full(5, 0.9))})  # a third of a side to the right
    rois = tracker.rois(detections_for([points]))
    assert rois[0].source == "detection" and tracker.tracks[rois[0].track_id].missed == 0


def test_faces_appear_and_disappear_with_ids_kept():
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=1, max_missed=2))
    a, b = face_at(100, 100), face_at(400, 120, scale=2.0)
    rois = tracker.rois(detections_for([a, b]))
    assert sorted(r.track_id for r in rois) == [0, 1]
    ids = {r.track_id: r for r in rois}
    assert ids[0].box[0] < ids[1].box[0]
    tracker.update({0: (a, np.full(5, 0.9)), 1: (b, np.full(5, 0.9))})
    c = face_at(250, 300)
    rois = tracker.rois(detections_for([b + 5, c]))  # a missed once, b moved, c is new
    assert sorted(r.track_id for r in rois) == [0, 1, 2]
    tracker.update({1: (b + 5, np.full(5, 0.9)), 2: (c, np.full(5, 0.9))})
    rois = tracker.rois(detections_for([c, b + 10]))  # a missed twice: gone; order does not matter
    assert sorted(r.track_id for r in rois) == [1, 2] and tracker.track_ids == [1, 2]
    rois = tracker.rois(Detections.empty())
    assert sorted(r.track_id for r in rois) == [1, 2]  # one missed round is tolerated
    assert tracker.rois(Detections.empty()) == [] and tracker.needs_detection()


def test_steady_scene_stretches_the_redetect_interval_and_a_new_face_resets_it():
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=5, redetect_every_max=20))
    a, b = face_at(100, 100), face_at(400, 120)
    detected, faces = [], [a]
    for frame in range(60):
        if frame == 40:
            faces = [a, b]  # a face enters
        detect = tracker.needs_detection()
        if detect:
            detected.append(frame)
        rois = tracker.rois(detections_for(faces) if detect else None)
        tracker.update({r.track_id: (faces[min(i, len(faces) - 1)], np.full(5, 0.9)) for i, r in enumerate(rois)})
    # 0 (first), 5 (+5, steady), 15 (+10, steady), 35 (+20, the cap), 55 finds b and resets to 5
    assert detected[:5] == [0, 5, 15, 35, 55]
    assert tracker.track_ids == [0, 1] and tracker._interval() == 5


def test_a_face_lost_for_a_few_frames_gets_its_id_back():
    config = TrackerConfig(redetect_every=1, max_missed=1, keep_lost=10)
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=config)
    a, b = face_at(100, 100), face_at(300, 100)
    tracker.rois(detections_for([a, b]))
    tracker.update({0: (a, np.full(5, 0.9)), 1: (b, np.full(5, 0.9))})
    assert [r.track_id for r in tracker.rois(detections_for([b]))] == [1]  # a missed: ended
    for _ in range(3):
        tracker.update({1: (b, np.full(5, 0.9))})
        tracker.rois(detections_for([b]))
    rois = tracker.rois(detections_for([a + 6, b]))  # a is back, moved a little
    assert sorted(r.track_id for r in rois) == [0, 1]
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=replace(config, keep_lost=2))
    tracker.rois(detections_for([a]))
    tracker.rois(Detections.empty())
    for _ in range(3):
        tracker.rois(Detections.empty())
    assert [r.track_id for r in tracker.rois(detections_for([a]))] == [1]  # kept too long ago: a new id


def test_no_second_track_on_one_face():
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=1))
    a = face_at(200, 200)
    higher = a + [0.0, -20.0]  # a second box on the same face (forehead), IoU too low to merge
    rois = tracker.rois(detections_for([a, higher]))
    assert [r.track_id for r in rois] == [0]
    tracker.update({0: (a, np.full(5, 0.9))})
    assert [r.track_id for r in tracker.rois(detections_for([higher, a]))] == [0]
    # two tracks whose crops followed their landmarks onto one face become one (the older id)
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(redetect_every=50))
    tracker.rois(detections_for([a, face_at(300, 200)]))
    tracker.update({0: (a, np.full(5, 0.9)), 1: (a + 2, np.full(5, 0.9))})
    assert [r.track_id for r in tracker.rois(None)] == [0]


def test_unknown_layout_tracks_without_roll():
    tracker = FaceTracker(crop_size=32, layout=None)
    points = face_at(50, 60, roll_deg=30.0)
    tracker.rois(detections_for([points]))
    tracker.update({0: (np.vstack([points, points + 1]), np.full(10, 0.8))})  # 10 points, no layout
    roi = tracker.rois(None)[0]
    assert roi.rotation_deg == 0.0 and roi.source == "landmarks"


def test_bad_config_is_a_user_error():
    with pytest.raises(UserError):
        TrackerConfig(redetect_every=0)
    with pytest.raises(UserError):
        TrackerConfig(velocity_gain=2.0)
    with pytest.raises(UserError):
        TrackerConfig(keep_lost=-1)


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    b = np.array([[5, 0, 15, 10]], np.float64)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150], [0.0]])


@pytest.mark.parametrize("turn_deg", [-30.0, 0.0, 30.0])
def test_real_rolled_face_gives_a_level_crop(face_photo, turn_deg):
    from realtime.detect.detector import BlazeFaceDetector

    rgb = cv2.cvtColor(cv2.imread(str(face_photo)), cv2.COLOR_BGR2RGB)[140:285, 10:155]  # the one face
    turn = cv2.getRotationMatrix2D((72.0, 72.0), turn_deg, 1.0)  # counter-clockwise as displayed
    image = cv2.warpAffine(rgb, turn, (145, 145))
    detections = BlazeFaceDetector("short")(image)
    rois = FaceTracker(crop_size=64, layout=None).rois(detections)
    assert len(rois) == 1
    assert abs(rois[0].rotation_deg + turn_deg) < 5.0  # a counter-clockwise turn is a negative roll
    eyes = transform_points(detections.keypoints[0, :2], rois[0].matrix)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1.0 and eyes[0, 0] < eyes[1, 0]


def test_ids_stay_stable_when_the_detector_box_is_much_larger_than_the_points():
    """BlazeFace boxes cover forehead to chin (about 2x the eye distance); a 5-point model's
    points span only eyes to mouth. Re-detections must still match the existing track."""
    points = face_at(200.0, 150.0)
    centre, side = points.mean(0), 2.1 * 30.0
    det = Detections(np.array([[centre[0] - side / 2, centre[1] - side / 2, centre[0] + side / 2, centre[1] + side / 2]]),
                     np.array([0.9]), detections_for([points]).keypoints)
    tracker = FaceTracker(80, MTFL, TrackerConfig(redetect_every=1))
    for frame in range(10):
        rois = tracker.rois(det if tracker.needs_detection() else None)
        tracker.update({roi.track_id: (points, np.full(5, 0.9)) for roi in rois})
    assert tracker.track_ids == [0]


def test_landmark_crops_keep_the_detectors_scale_and_refine_reframes_new_faces():
    """A model that reads every face a little smaller than it is must not shrink its own crops
    frame after frame: the landmark box keeps the side ratio seen on the detection crop. And
    ``refine`` gives a new face, in its first frame, the crop its landmarks give."""
    tracker = FaceTracker(crop_size=64, layout=MTFL, config=TrackerConfig(min_confidence=0.1))
    points = face_at(300, 200)
    (roi,) = tracker.rois(detections_for([points]))
    detected_side = roi.box[2]
    shrunk = (points - points.mean(0)) * 0.95 + points.mean(0)  # the model's inward bias
    (refined,) = tracker.refine([roi], {roi.track_id: (shrunk, np.full(5, 0.5))})
    assert refined.source == "landmarks" and refined.detection_score == roi.detection_score
    assert refined.box[2] == pytest.approx(detected_side)
    for _ in range(10):  # the biased model keeps reading the same face: the crop must not shrink
        (roi,) = tracker.rois(None)
        tracker.update({roi.track_id: (shrunk, np.full(5, 0.5))})
    assert tracker.tracks[roi.track_id].box[2] == pytest.approx(detected_side)
    kept = tracker.rois(None)
    assert tracker.refine(kept, {}) == kept  # landmark-framed rois are left alone


def test_processor_takes_the_weights_calibrated_redetect_threshold():
    from realtime.pipeline.config import PipelineConfig
    from realtime.pipeline.processor import FrameProcessor
    from realtime.video import DEFAULT_WEIGHTS
    from realtime.models.weights import weights_info

    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the bundled 68-point model is not there")
    calibrated = weights_info(DEFAULT_WEIGHTS)["track_min_confidence"]
    processor = FrameProcessor.from_config(PipelineConfig(DEFAULT_WEIGHTS))
    assert processor.tracker.config.min_confidence == calibrated
    mine = FrameProcessor.from_config(PipelineConfig(DEFAULT_WEIGHTS, tracker=TrackerConfig(min_confidence=0.5)))
    assert mine.tracker.config.min_confidence == 0.5
    assert FaceTracker(64, MTFL).config.min_confidence == 0.3  # no weights: the default


def test_a_sure_track_keeps_its_measured_roll_against_a_detectors_upright_guess():
    """BlazeFace finds an upside-down face but places its eye keypoints as if it were upright: a
    sure track that takes the detector's framing keeps the roll its landmarks measured (180), while
    an unsure one takes the detector's (it may come from a turned pass, ``stages/turned_search``)."""
    config = TrackerConfig(redetect_every=1, redetect_every_max=1, min_confidence=0.3)
    for confidence, expected in ((0.9, 180.0), (0.1, 0.0)):
        tracker = FaceTracker(crop_size=64, layout=MTFL, config=config)
        upside_down = face_at(300, 200, roll_deg=180.0)
        (roi,) = tracker.rois(detections_for([upside_down]))
        tracker.update({roi.track_id: (upside_down, np.full(5, confidence))})
        assert abs(abs(tracker.tracks[roi.track_id].rotation_deg) - 180.0) < 1e-6
        fooled = face_at(300, 230, roll_deg=0.0)  # its eyes where an upright face's would be, framed lower
        (roi,) = tracker.rois(detections_for([fooled]))
        assert roi.source == "detection" and abs((abs(roi.rotation_deg) - expected)) < 1e-6, (confidence, roi)
