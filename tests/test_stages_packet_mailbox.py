"""The per-frame record's JSON form and the latest-item mailbox (threads, slow consumer, close)."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from realtime.pipeline.mailbox import LatestMailbox, MailboxClosed
from realtime.core.packet import (
    FaceResult, FramePacket, HeadPose, csv_header, face_from_dict, packet_to_csv_rows, packet_to_dict,
    packet_to_json,
)


def make_packet() -> FramePacket:
    face = FaceResult(track_id=3, box_xyxy=[10, 20, 110, 120], points=[[30.123, 40.0], [np.nan, 50.5]],
                      scores=[0.9, 0.1], pose=HeadPose(10.0, -5.0, 2.5), detection_score=0.87)
    return FramePacket(frame_id=7, t_capture=1.25, image=np.zeros((48, 64, 3), np.uint8), faces=[face],
                       timings={"detect": 2.0}, dropped=4)


def test_packet_round_trips_through_json():
    record = json.loads(json.dumps(packet_to_dict(make_packet())))
    assert record["frame_id"] == 7 and record["width"] == 64 and record["height"] == 48
    assert record["dropped"] == 4 and record["timings_ms"] == {"detect": 2.0}
    face = record["faces"][0]
    assert face["points"] == [[30.12, 40.0], [None, 50.5]]
    assert face["pose"] == {"yaw_deg": 10.0, "pitch_deg": -5.0, "roll_deg": 2.5}
    back = face_from_dict(face)
    assert back.track_id == 3 and back.points.shape == (2, 2) and np.isnan(back.points[1, 0])
    np.testing.assert_allclose(back.box_xyxy, [10, 20, 110, 120])


def test_packet_rejects_bad_image_and_mismatched_scores():
    with pytest.raises(ValueError):
        FramePacket(frame_id=0, t_capture=0.0, image=np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        FaceResult(track_id=0, box_xyxy=[0, 0, 1, 1], points=np.zeros((3, 2)), scores=np.zeros(2))


def test_mailbox_newest_wins_and_counts_drops():
    box: LatestMailbox[int] = LatestMailbox()
    assert box.get(timeout_s=0.0) is None
    assert box.put(1) is False
    assert box.put(2) is True
    assert box.get(timeout_s=0.0) == 2
    assert box.dropped == 1 and box.put_count == 2


def test_mailbox_close_wakes_a_blocked_consumer():
    box: LatestMailbox[int] = LatestMailbox()
    outcome = []

    def consume():
        try:
            box.get(timeout_s=10.0)
        except MailboxClosed:
            outcome.append("closed")

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.05)  # let the consumer block (test-only; the mailbox itself never sleeps)
    start = time.monotonic()
    box.close()
    thread.join(timeout=2.0)
    assert not thread.is_alive() and outcome == ["closed"]
    assert time.monotonic() - start < 1.0
    with pytest.raises(MailboxClosed):
        box.put(1)


def test_mailbox_slow_consumer_drops_old_items_and_accounts_for_all():
    box: LatestMailbox[int] = LatestMailbox()
    taken: list[int] = []

    def consume():
        while True:
            try:
                item = box.get(timeout_s=5.0)
            except MailboxClosed:
                return
            if item is not None:
                taken.append(item)
                time.sleep(0.01)  # a deliberately slow consumer

    thread = threading.Thread(target=consume)
    thread.start()
    n = 200
    for i in range(n):
        box.put(i)
        time.sleep(0.0005)
    box.close()
    thread.join(timeout=5.0)
    assert not thread.is_alive()
    assert taken == sorted(taken) and taken[-1] == n - 1  # in order, and the newest is never lost
    assert box.dropped > 0 and len(taken) + box.dropped == n


def test_json_line_and_csv_rows():
    packet = make_packet()
    line = packet_to_json(packet)
    assert "\n" not in line and json.loads(line)["faces"][0]["track_id"] == 3
    header = csv_header(2)
    rows = packet_to_csv_rows(packet)
    assert len(rows) == 1 and len(rows[0]) == len(header)
    row = dict(zip(header, rows[0]))
    assert row["track_id"] == 3 and row["yaw_deg"] == 10.0 and row["x0"] == 30.12 and row["x1"] == ""
    assert (row["width"], row["height"], row["rotation_deg"], row["mirrored"]) == (64, 48, 0, 0)
    empty = FramePacket(frame_id=8, t_capture=1.5, image=np.zeros((2, 3, 3), np.uint8), rotation_deg=270, mirrored=True)
    assert packet_to_csv_rows(empty) == [[8, 1.5, "", 3, 2, 270, 1]]  # the frame the coordinates refer to
    record = json.loads(packet_to_json(empty))
    assert (record["width"], record["height"], record["rotation_deg"], record["mirrored"]) == (3, 2, 270, True)
