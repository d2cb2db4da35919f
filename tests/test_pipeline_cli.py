"""``python -m realtime.video``: one record per input frame, atomic outputs, one-line errors."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

import realtime.video
from realtime.video import main
from test_pipeline_capture import make_clip

torch.set_num_threads(1)
cv2.setNumThreads(1)


def count_video_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_video_in_annotated_video_and_one_record_per_frame_out(tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", frames=20, audio=True)
    out, marks = tmp_path / "out" / "annotated.mp4", tmp_path / "out" / "marks.jsonl"
    assert main([str(clip), "-o", str(out), "--landmarks", str(marks), "--detector", "full"]) == 0
    records = [json.loads(line) for line in marks.read_text().splitlines()]
    assert [r["frame_id"] for r in records] == list(range(20))
    assert count_video_frames(out) == 20
    with av.open(str(out)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["annotated.mp4", "marks.jsonl"]
    assert "20 frames" in capsys.readouterr().err


def test_folder_of_grey_rgba_and_tiny_images_as_csv(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), np.full((48, 64), 90, np.uint8))
    cv2.imwrite(str(folder / "1.png"), np.full((48, 64, 4), 60, np.uint8))
    cv2.imwrite(str(folder / "2.png"), np.zeros((1, 1, 3), np.uint8))
    out, marks = tmp_path / "o.mp4", tmp_path / "o.csv"
    assert main([str(folder), "-o", str(out), "--landmarks", str(marks), "--csv"]) == 0
    rows = marks.read_text().splitlines()
    assert len(rows) == 1 + 3 and [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]
    assert count_video_frames(out) == 3


def test_single_image(tmp_path):
    cv2.imwrite(str(tmp_path / "x.jpg"), np.full((33, 45, 3), 128, np.uint8))
    assert main([str(tmp_path / "x.jpg"), "-o", str(tmp_path / "o.mp4"), "--landmarks", str(tmp_path / "o.jsonl")]) == 0
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 1 and count_video_frames(tmp_path / "o.mp4") == 1


@pytest.mark.parametrize("case", ["missing", "zero_byte", "not_video", "truncated", "bad_weights"])
def test_bad_input_is_one_error_line_exit_2_and_no_output(tmp_path, capsys, case):
    inputs = tmp_path / "in"
    inputs.mkdir()
    path, extra = inputs / "clip.mp4", []
    if case == "zero_byte":
        path.write_bytes(b"")
    elif case == "not_video":
        path.write_text("not a video\n" * 100)
    elif case == "truncated":
        clip = make_clip(inputs / "full.mp4", frames=24, faststart=True)
        path.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])
    elif case == "bad_weights":
        make_clip(path, frames=4)
        (inputs / "w.safetensors").write_text("junk")
        extra = ["--weights", str(inputs / "w.safetensors")]
    out = tmp_path / "out"
    code = main([str(path), "-o", str(out / "o.mp4"), "--landmarks", str(out / "o.jsonl"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and sum(line.startswith("error") for line in err) == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_ctrl_c_finishes_both_outputs_with_the_frames_done(tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4", frames=32)
    real_draw = realtime.video.draw_overlay

    def draw_then_interrupt(image, packet):
        if packet.frame_id == 5:
            raise KeyboardInterrupt
        return real_draw(image, packet)

    monkeypatch.setattr(realtime.video, "draw_overlay", draw_then_interrupt)
    out, marks = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    assert main([str(clip), "-o", str(out), "--landmarks", str(marks)]) == 130
    assert [json.loads(line)["frame_id"] for line in marks.read_text().splitlines()] == list(range(5))
    assert count_video_frames(out) == 5


def test_an_unreadable_still_is_skipped_with_one_warning_and_a_record(tmp_path, capsys):
    """A folder of images with one file that is not an image: the others are processed and written,
    the bad one has a record saying why and one ``warning:`` line, and the exit status is 3."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "c.png"):
        cv2.imwrite(str(folder / name), np.full((48, 64, 3), 90, np.uint8))
    (folder / "b.jpg").write_text("not an image\n")
    out, marks = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    assert main([str(folder), "-o", str(out), "--landmarks", str(marks)]) == realtime.video.EXIT_SKIPPED == 3
    rows = [json.loads(line) for line in marks.read_text().splitlines()]
    assert [(r["frame_id"], r["source"]) for r in rows] == [(0, "a.png"), (1, "b.jpg"), (2, "c.png")]
    assert rows[1]["skipped"] == f"cannot read {folder / 'b.jpg'} as an image" and rows[1]["faces"] == []
    assert rows[1]["width"] is None and "skipped" not in rows[0] and rows[2]["width"] == 64
    assert count_video_frames(out) == 2
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped b.jpg: cannot read {folder / 'b.jpg'} as an image"]
    assert "Traceback" not in err and "error" not in err and "1 unreadable image(s) skipped (exit status 3)" in err


def test_strict_stops_at_the_first_unreadable_still(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    (folder / "b.jpg").write_text("not an image\n")
    out = tmp_path / "out"
    code = main([str(folder), "-o", str(out / "o.mp4"), "--landmarks", str(out / "o.jsonl"), "--strict"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == f"error: cannot read {folder / 'b.jpg'} as an image"
    assert sum("error" in line for line in err) == 1 and not any(line.startswith("warning") for line in err)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_folder_with_no_readable_image_is_an_error(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "b.jpg").write_text("not an image\n")
    out = tmp_path / "out"
    code = main([str(folder), "-o", str(out / "o.mp4"), "--landmarks", str(out / "o.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == f"error: none of the 1 images of {folder} could be read"
    assert not out.exists() or list(out.iterdir()) == []
