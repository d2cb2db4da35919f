"""What a tired user types, across every command line: one ``error:`` line, exit 2, nothing made or changed.

Each case runs a CLI's ``main`` in-process on paths in a temporary folder and checks the exit
status, that stderr is exactly one ``error:`` line without a traceback (``cli_errors``), and that
the folder holds exactly what it held before, byte for byte (no output, no ``.partial`` or ``.tmp``
file, an input left untouched). The signal cases (SIGTERM, SIGHUP, Ctrl-C at start-up) run the
command as a process.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_errors import default_signals, one_error_line

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256), and every folder (-> 'dir')."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture()
def work(tmp_path, clip_frames):
    """A folder with a short video ``in.mp4`` (3 frames of the clip), a still ``face.png``, a text
    file, a subfolder and a read-only subfolder (or, for root, whom permissions do not stop, /proc)."""
    import av
    import cv2

    frames = clip_frames(0, 1, 2)
    with av.open(str(tmp_path / "in.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not a video\n")
    (tmp_path / "folder").mkdir()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    yield tmp_path
    locked.chmod(0o700)


def read_only_folder(work: Path) -> Path:
    locked = work / "locked"
    try:
        (locked / ".probe").touch()
    except OSError:
        return locked
    (locked / ".probe").unlink()
    return Path("/proc")  # running as root: permission bits do not stop writes; /proc takes no files


def video_main(argv):
    from realtime.video import main
    return main(argv)


def train_main(argv):
    from train.__main__ import main
    return main(argv)


# ------------------------------------------------------------------ realtime.video

VIDEO_CASES = {
    "output is the input": (["in.mp4", "-o", "in.mp4", "--landmarks", "o.jsonl"], "is the input"),
    "output is the input by another path": (["in.mp4", "-o", "folder/../in.mp4", "--landmarks", "o.jsonl"], "is the input"),
    "landmarks are the input": (["face.png", "-o", "o.mp4", "--landmarks", "face.png"], "is the input"),
    "both outputs one file": (["in.mp4", "-o", "x.mp4", "--landmarks", "x.mp4"], "same file"),
    "both outputs one file, no extension": (["in.mp4", "-o", "X", "--landmarks", "X"], "same file"),
    "video output is a folder": (["in.mp4", "-o", "folder", "--landmarks", "o.jsonl"], "is a folder"),
    "landmarks output is a folder": (["in.mp4", "-o", "o.mp4", "--landmarks", "folder"], "is a folder"),
    "video as text": (["in.mp4", "-o", "o.txt", "--landmarks", "o.jsonl"], "expected a .mp4"),
    "landmarks as text": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.txt"], "expected a .jsonl or .csv"),
    "csv into a .jsonl name": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--csv"], "--csv writes CSV"),
    "output under a file": (["in.mp4", "-o", "notes.txt/o.mp4", "--landmarks", "o.jsonl"], "is a file"),
    "empty output name": (["in.mp4", "-o", "", "--landmarks", "o.jsonl"], "empty"),
    "missing input": (["nope.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl"], "not found"),
    "missing weights": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--weights", "w.safetensors"], "not found"),
    "missing face model": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--face-model", "f.npy"], "not found"),
    "focal nan": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--focal-px", "nan"], "--focal-px"),
    "focal inf": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--focal-px", "inf"], "--focal-px"),
    "focal negative": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--focal-px", "-800"], "--focal-px"),
    "focal not a number": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--focal-px", "wide"], "--focal-px"),
    "hfov 180": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--hfov", "180"], "--hfov"),
    "hfov 0": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--hfov", "0"], "--hfov"),
    "confidence 2": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--min-confidence", "2"], "--min-confidence"),
    "confidence -1": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--min-confidence", "-1"], "--min-confidence"),
    "confidence nan": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--min-confidence", "nan"], "--min-confidence"),
    "rate nan": (["folder", "-o", "o.mp4", "--landmarks", "o.jsonl", "--rate", "nan"], "--rate"),
    "rate 0": (["folder", "-o", "o.mp4", "--landmarks", "o.jsonl", "--rate", "0"], "--rate"),
    "unknown detector": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--detector", "huge"], "--detector"),
    "both focal and hfov": (["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--focal-px", "800", "--hfov", "60"],
                            "not allowed"),
    "no outputs": (["in.mp4"], "required"),
}


@pytest.mark.parametrize("case", list(VIDEO_CASES))
def test_video_refuses_bad_input_before_any_work(work, capsys, monkeypatch, case):
    argv, words = VIDEO_CASES[case]
    monkeypatch.chdir(work)
    before = snapshot(work)
    assert video_main(argv) == 2
    assert words in one_error_line(capsys)
    assert snapshot(work) == before


def test_video_refuses_a_read_only_output_folder(work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    before = snapshot(work)
    assert video_main(["in.mp4", "-o", str(read_only_folder(work) / "o.mp4"), "--landmarks", "o.jsonl"]) == 2
    assert "cannot write in" in one_error_line(capsys)
    assert snapshot(work) == before


def test_video_follows_a_csv_extension_and_makes_missing_folders(work, capsys, monkeypatch):
    """``--landmarks out.csv`` without ``--csv`` writes CSV (the extension names a format we
    write); a missing parent folder is created and said."""
    monkeypatch.chdir(work)
    assert video_main(["face.png", "-o", "new/o.mp4", "--landmarks", "new/deeper/o.csv"]) == 0
    err = capsys.readouterr().err
    assert "created folder" in err and str(work / "new" / "deeper") in err
    header = (work / "new" / "deeper" / "o.csv").read_text().splitlines()[0]
    assert header.startswith("frame_id,") and ",source," in header
    assert sorted(p.name for p in (work / "new").iterdir()) == ["deeper", "o.mp4"]


# ------------------------------------------------------------------ the other realtime CLIs

def test_webcam_refuses_bad_values_before_opening_anything(work, capsys, monkeypatch):
    from realtime.webcam import main

    monkeypatch.chdir(work)
    before = snapshot(work)
    for argv, words in ((["--source", "in.mp4", "--fps", "nan"], "--fps"),
                        (["--source", "in.mp4", "--width", "0"], "--width"),
                        (["--source", "in.mp4", "--quit-after", "0"], "--quit-after"),
                        (["--source", "in.mp4", "--screenshot-dir", "notes.txt"], "is a file"),
                        (["--source", "in.mp4", "--focal-px", "0"], "--focal-px"),
                        (["--source", "in.mp4", "--weights", "missing.safetensors"], "not found")):
        assert main(argv) == 2, argv
        assert words in one_error_line(capsys), argv
    assert snapshot(work) == before


def test_webcam_without_the_gui_extra_says_so_in_one_line(work):
    """``make demo`` installs no Qt: the webcam must still start, parse and refuse in one line."""
    clip = Path(__file__).resolve().parents[1] / "assets" / "demo.mp4"
    code = ("import sys; sys.modules['pyqtgraph'] = None; sys.modules['PySide6'] = None\n"
            "from realtime.webcam import main\n"
            f"sys.exit(main(['--source', {str(clip)!r}, '--quit-after', '1']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=work,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines[-1].startswith("error: the overlay needs the gui extra"), lines


def test_bench_and_clipscore_refuse_bad_outputs(work, capsys, monkeypatch):
    from realtime.bench import main as bench
    from realtime.clipscore import main as clipscore

    monkeypatch.chdir(work)
    before = snapshot(work)
    for main, argv, words in ((bench, ["-o", "notes.txt"], "is a file"),
                              (bench, ["--mediapipe-faces", "0", "-o", "b"], "--mediapipe-faces"),
                              (bench, ["--batches", "0,8", "-o", "b"], "--batches"),
                              (clipscore, ["--json", "scores.txt"], "expected a .json"),
                              (clipscore, ["--json", "folder"], "is a folder")):
        assert main(argv) == 2, argv
        assert words in one_error_line(capsys), argv
    assert snapshot(work) == before


# ------------------------------------------------------------------ python -m train

@pytest.fixture()
def weights():
    """Real shipped weights to evaluate and adapt (the synthetic benchmark's 5-point model)."""
    from realtime.core.assets import SYNTH_5
    return SYNTH_5


TRAIN_CASES = {
    "fit into an existing file": (["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "notes.txt"],
                                  "is a file"),
    "fit with a nan learning rate": (["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "r", "--lr", "nan"],
                                     "--lr"),
    "fit with mirror 2": (["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "r", "--mirror", "2"],
                          "--mirror"),
    "fit with batch 0": (["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "r", "--batch-size", "0"],
                         "--batch-size"),
    "fit with rotation 999": (["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "r", "--rotation", "999"],
                              "--rotation"),
    "fit with 9 branches": (["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "r", "--branches", "9"],
                            "--branches"),
    "fit into a read-only folder": (["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "{ro}/run"],
                                    "cannot write in"),
    "fit with an unknown preset": (["fit", "--preset", "nope", "--data", "synth:train?n=8", "--out", "r"], "unknown preset"),
    "evaluate: plot as text": (["evaluate", "{w}", "--data", "synth:test", "--ced", "ced.txt"], "expected a .png"),
    "evaluate: json into a folder": (["evaluate", "{w}", "--data", "synth:test", "--json", "folder"], "is a folder"),
    "evaluate: json read-only": (["evaluate", "{w}", "--data", "synth:test", "--json", "{ro}/e.json"], "cannot write in"),
    "evaluate: missing weights": (["evaluate", "nope.safetensors", "--data", "synth:test"], "not found"),
    "evaluate: batch 0": (["evaluate", "{w}", "--data", "synth:test", "--batch-size", "0"], "--batch-size"),
    "export a missing checkpoint": (["export", "ckpt.pt", "-o", "w.safetensors"], "not found"),
    "export as text": (["export", "notes.txt", "-o", "w.txt"], "expected a .safetensors"),
    "adapt over its own weights": (["adapt", "{w}", "--frames", "in.mp4", "-o", "{w}"], "is the input"),
    "adapt into a read-only folder": (["adapt", "{w}", "--frames", "in.mp4", "-o", "{ro}/a.safetensors"],
                                      "cannot write in"),
    "adapt with lr 0": (["adapt", "{w}", "--frames", "in.mp4", "-o", "a.safetensors", "--lr", "0"], "--lr"),
    "adapt as text": (["adapt", "{w}", "--frames", "in.mp4", "-o", "a.txt"], "expected a .safetensors"),
    "synth preview as jpeg": (["synth", "--split", "test", "--n", "4", "--preview", "p.jpg"], "expected a .png"),
    "no command": ([], "required"),
    "evaluate on an unknown device": (["evaluate", "{w}", "--data", "synth:test", "--device", "warp9"], "unknown torch device"),
    "adapt on an unknown device": (["adapt", "{w}", "--frames", "in.mp4", "-o", "a.safetensors", "--device", "warp9"],
                                   "unknown torch device"),
}
if not torch.cuda.is_available():  # on a CPU machine, asking for the GPU is refused before any work
    TRAIN_CASES["evaluate on a missing GPU"] = (["evaluate", "{w}", "--data", "synth:test", "--device", "cuda"], "no CUDA device")
    TRAIN_CASES["adapt on a missing GPU"] = (["adapt", "{w}", "--frames", "in.mp4", "-o", "a.safetensors", "--device", "cuda"],
                                            "no CUDA device")


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_refuses_bad_input_before_any_work(work, weights, capsys, monkeypatch, case):
    argv, words = TRAIN_CASES[case]
    argv = [a.format(w=weights, ro=read_only_folder(work)) for a in argv]
    monkeypatch.chdir(work)
    monkeypatch.setenv("RCN_CACHE", str(work.parent / f"{work.name}-cache"))
    before, weights_hash = snapshot(work), hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    assert train_main(argv) == 2
    assert words in one_error_line(capsys)
    assert snapshot(work) == before
    assert hashlib.sha256(Path(weights).read_bytes()).hexdigest() == weights_hash


def test_export_refuses_a_pickle_in_plain_words(work, capsys, monkeypatch):
    """A checkpoint holding Python objects is refused without running them, and the message says
    so in our words, never quoting torch's advice to load with ``weights_only=False``."""
    import torch

    monkeypatch.chdir(work)
    torch.save({"format": "rcn-checkpoint/1", "payload": np.dtype("float32").type}, work / "ckpt.pt")
    (work / "junk.pt").write_bytes(b"\x80\x05not a checkpoint")
    before = snapshot(work)
    assert train_main(["export", "ckpt.pt", "-o", "w.safetensors"]) == 2
    line = one_error_line(capsys)
    assert "refused" in line and "could run code" in line and "weights_only" not in line
    assert train_main(["export", "junk.pt", "-o", "w.safetensors"]) == 2
    assert "not a readable training checkpoint" in one_error_line(capsys)
    assert snapshot(work) == before


def test_a_failing_fit_leaves_no_empty_run_folder(work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    before = snapshot(work)
    assert train_main(["fit", "--preset", "rcn_mtfl", "--data", "folder:nowhere", "--out", "runs/new"]) == 2
    one_error_line(capsys)
    assert snapshot(work) == before


# ------------------------------------------------------------------ --help

HELP_COMMANDS = [["realtime.video"], ["realtime.webcam"], ["realtime.bench"], ["realtime.clipscore"],
                 ["train", "fit"], ["train", "evaluate"], ["train", "export"], ["train", "synth"], ["train", "adapt"],
                 ["train.reproduce"], ["train.faces68"], ["train.faces68_ablate"], ["train.compare"],
                 ["train.tools.score_detector"], ["train.tools.make_demo_clip"], ["train.tools.make_synthetic_preview"],
                 ["train.tools.check_head_pose"]]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_every_option_is_described_with_its_default_and_range(command):
    """Every option has a description; every option with a default shows it; numeric options show
    their range; no RST backticks reach the terminal."""
    import argparse
    import importlib

    from realtime.core.cliargs import NumberType

    module = importlib.import_module(command[0] if command[0] != "train" else "train.__main__")
    captured = {}

    def capture(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        if command[0] == "train":
            parser = module.build_parser()
            parser = parser._subparsers._group_actions[0].choices[command[1]]
        else:
            try:
                (module.parse_args if hasattr(module, "parse_args") else module.main)(["--help"])
            except SystemExit:
                pass
            parser = captured["parser"]
    finally:
        argparse.ArgumentParser.parse_args = original
    text = parser.format_help()
    assert "``" not in text
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings and action.nargs == argparse.PARSER:
            continue
        assert action.help, f"{command}: {action.dest} has no description"
        if isinstance(action.type, NumberType):
            assert "range" in parser._get_formatter()._get_help_string(action), action.dest
        if action.option_strings and action.default not in (None, False) and action.nargs != 0:
            assert "default" in parser._get_formatter()._get_help_string(action).lower(), action.dest


def test_train_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        train_main(["--help"])
    out = capsys.readouterr().out
    for name in ("fit", "evaluate", "export", "synth", "adapt"):
        assert name in out.split("positional arguments")[0]


# ------------------------------------------------------------------ signals

def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    """The command as a process with the stop signals at their defaults: CI may run the tests as a
    background job (SIGINT ignored) or under nohup (SIGHUP ignored), and an ignored signal stays
    ignored by design."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_video_stopped_by_a_signal_keeps_what_is_done_and_no_temporary_file(tmp_path, sig):
    """SIGTERM and SIGHUP act as Ctrl-C: both outputs finished with the frames done, nothing else left
    in the folder, exit 128 + the signal."""
    import av

    from realtime.core.assets import DEMO_CLIP

    proc = _start(["-m", "realtime.video", str(DEMO_CLIP), "-o", "o.mp4", "--landmarks", "o.jsonl"], tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # wait until frames are being written
        partial = tmp_path / "o.jsonl.partial"
        if partial.is_file() and partial.read_text().count("\n") >= 5:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and f"interrupted ({signal.Signals(sig).name})" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl", "o.mp4"]
    records = (tmp_path / "o.jsonl").read_text().splitlines()
    with av.open(str(tmp_path / "o.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 5 <= len(records) < 300 and frames == len(records)


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    """Ctrl-C while the command is still importing (torch, OpenCV) prints one line, no traceback."""
    from realtime.core.assets import DEMO_CLIP

    for delay in (0.2, 0.6, 1.0, 1.5):  # while torch imports on a loaded machine: once lost (ran to the end)
        proc = _start(["-m", "realtime.video", str(DEMO_CLIP), "-o", "o.mp4", "--landmarks", "o.jsonl"], tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (130, -signal.SIGINT), err
        lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "frame/s" not in ln
                 and not ln.startswith("landmark backend")]
        assert "Traceback" not in err and lines and lines[-1].startswith("interrupted (Ctrl-C)"), err
        assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.tmp*")), list(tmp_path.iterdir())


def test_ctrl_c_wrapped_by_an_import_is_one_line_too(tmp_path):
    """Python 3.11 wraps a KeyboardInterrupt raised inside a class's ``__set_name__`` (torch's
    import runs them) in a RuntimeError: the start-up hook still prints one line and the process
    ends as Ctrl-C ends it. The interrupt is raised there on purpose, the way a late Ctrl-C did."""
    code = ("import sys; sys.argv[0] = '-m'\n"
            "import signal\n"
            "from realtime.core.signals import install_startup_hook\n"
            "install_startup_hook()\n"
            "class Name:\n"
            "    def __set_name__(self, owner, name):\n"
            "        signal.raise_signal(signal.SIGINT)\n"
            "class Owner:\n"
            "    field = Name()\n")
    proc = _start(["-c", code], tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert err.strip() == "interrupted (Ctrl-C): nothing was written", err


def test_a_swallowed_ctrl_c_is_raised_again_before_the_command_runs(capsys):
    """A library that swallows the KeyboardInterrupt a signal raised (torch's C import of numpy did)
    does not make the command ignore it: ``exit_status`` raises the noted signal before ``run``."""
    import signal as signals_module

    from realtime.core import signals
    from realtime.core.errors import exit_status

    ran = []
    try:
        signals._raise_noted(signals_module.SIGINT, None)  # what the handler does on Ctrl-C ...
    except KeyboardInterrupt:
        pass  # ... and a library's bare except
    assert exit_status(lambda: ran.append(1) or 0) == 130 and ran == []
    assert capsys.readouterr().err.strip() == "interrupted (Ctrl-C)"
    assert exit_status(lambda: ran.append(1) or 0) == 0 and ran == [1]  # noted once, forgotten after


def test_fit_stopped_by_sigterm_saves_a_consistent_checkpoint_and_exits_143(tmp_path):
    proc = _start(["-m", "train", "fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=64", "--val",
                   "synth:val?n=16", "--out", "run", "--steps", "100000", "--batch-size", "4", "--eval-every", "5",
                   "--width-mult", "0.25", "--quiet"], tmp_path)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not (tmp_path / "run" / "last.pt").is_file():
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err and "--resume" in err
    from train.engine.checkpoint import load_checkpoint
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] >= 5
    assert not list((tmp_path / "run").glob(".*tmp*"))


def test_the_live_panel_applies_the_command_line_ranges():
    """The webcam's live panel (``LiveParams``) refuses what the command lines refuse, NaN included."""
    from dataclasses import replace

    from realtime.core.errors import UserError
    from realtime.pipeline.live import LiveParams

    base = LiveParams.defaults()
    for change in ({"focal_px": float("nan")}, {"focal_px": 0.0}, {"hfov_deg": 180.0}, {"hfov_deg": float("inf")},
                   {"detector_threshold": float("nan")}, {"detector_threshold": 1.5},
                   {"smoothing": replace(base.smoothing, min_cutoff=float("nan"))},
                   {"smoothing": replace(base.smoothing, beta=-1.0)},
                   {"smoothing": replace(base.smoothing, d_cutoff=0.0)}):
        with pytest.raises(UserError):
            replace(base, **change)
    with pytest.raises(UserError):
        replace(base, tracker=replace(base.tracker, redetect_every=0))
    assert replace(base, focal_px=800.0, hfov_deg=90.0).focal_px == 800.0


def test_video_without_pyav_says_what_to_install(work, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    monkeypatch.chdir(work)
    before = snapshot(work)
    assert video_main(["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl"]) == 2
    assert "rcn-realtime[video]" in one_error_line(capsys)
    assert snapshot(work) == before


def test_resuming_from_a_pickle_is_refused_in_plain_words(work, capsys, monkeypatch):
    """``train fit --resume`` whose ``last.pt`` holds Python objects: refused without running them,
    in one line that never suggests turning ``weights_only`` off; the run folder is left as it was."""
    import torch

    monkeypatch.chdir(work)
    monkeypatch.setenv("RCN_CACHE", str(work.parent / f"{work.name}-cache"))
    (work / "run").mkdir()
    torch.save({"format": "rcn-checkpoint/1", "payload": np.dtype("float32").type}, work / "run" / "last.pt")
    before = snapshot(work)
    assert train_main(["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "run", "--resume"]) == 2
    line = one_error_line(capsys)
    assert "refused" in line and "weights_only" not in line
    assert snapshot(work) == before


def test_name_list_keeps_order_drops_repeats_and_names_the_choices():
    from realtime.core.cliargs import name_list
    from realtime.core.errors import UserError
    assert name_list("--parts", " b, a,b ", ("a", "b", "c"), "part") == ["b", "a"]
    assert name_list("--parts", "", ("a", "b"), "part", empty=True) == []
    with pytest.raises(UserError, match=r"^--parts: unknown part\(s\) x, y: choose from a, b$"):
        name_list("--parts", "a,x,y", ("a", "b"), "part")
    with pytest.raises(UserError, match="^--parts: name at least one part of a, b"):
        name_list("--parts", " , ", ("a", "b"), "part")
