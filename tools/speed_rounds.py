"""Issue 27's speed numbers, each system run in turn for several rounds in one process tree.

    python tools/speed_rounds.py [--parts api,video,live] [--rounds 5] [--baseline DIR]
                                 [--clip assets/demo.mp4] [--live-clip FILE] [--json OUT.json]

Run from the repository root with the machine otherwise idle. ``--baseline DIR`` is another
checkout of this project (e.g. ``git worktree add /tmp/base <commit>``), run with the same venv from
its own folder, so before and after are measured side by side.

- **api**: the pipeline through the Python API over ``--clip`` (``FaceLandmarker().track``: decode,
  detect, track, landmarks, smoothing, pose, and each frame's JSON line as ``--landmarks`` writes
  it; no video out), against MediaPipe's face mesh 0.10.21 doing the same (decode, its detector and
  mesh in tracking mode, a JSON line a frame: ``realtime.compare.mediapipe_mesh``). Each system
  lives in its own child process, loaded and warmed up once; every round asks each for one pass
  over the clip, in an order rotated per round. Printed: fps per round, the ratio ours/MediaPipe
  per round, and the median, min and max.
- **video**: ``python -m realtime.video CLIP -o OUT.mp4 --landmarks OUT.jsonl`` (what ``make demo``
  runs), a fresh process per round; fps as its summary line says (frames over the time to the last
  frame processed or written, start-up excluded).
- **live**: ``python -m realtime.webcam --source LIVE_CLIP`` through the real window, offscreen
  (QT_QPA_PLATFORM=offscreen), the file played as live at its own rate, until its end; a fresh
  process per round. Read from the closed window: frames shown a second (first to last shown),
  frames dropped at the entrance of the decoded ones, and the latency from a frame's arrival to
  its result (p50, p95), as the window's info line counts them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A child for part api: loads its system once, then runs one pass over the clip per line on stdin
# and prints the fps; the same code serves this checkout and a baseline one.
API_CHILD = r"""
import json, sys, time
system, clip = sys.argv[1], sys.argv[2]
if system == "mediapipe":
    from realtime.compare.mediapipe_mesh import MediaPipeMesh, record_json
    from realtime.io.capture import VideoFileSource
    mesh = MediaPipeMesh(video=True)
    def one_pass():
        with VideoFileSource(clip) as source:
            n = 0
            for f in source:
                line = record_json(f.frame_id, f.t_capture, f.image.shape[1], f.image.shape[0], mesh(f.image))
                n += 1
        return n
else:
    from realtime import FaceLandmarker
    from realtime.core.packet import packet_to_json
    landmarker = FaceLandmarker()
    def one_pass():
        return sum(1 for packet in landmarker.track(clip) if packet_to_json(packet))
one_pass()  # warm-up: the backend, the detector, the first allocations
print("ready", flush=True)
for _ in sys.stdin:
    start = time.perf_counter()
    n = one_pass()
    print(json.dumps({"frames": n, "fps": n / (time.perf_counter() - start)}), flush=True)
"""

# A child for part live: the webcam command's own main(), with the window it closes kept.
LIVE_CHILD = r"""
import json, sys
import numpy as np
import realtime.gui.overlay as overlay
kept = {}
run_window = overlay.run_window
def keep(*args, **kwargs):
    kept["window"] = window = run_window(*args, **kwargs)
    return window
overlay.run_window = keep
from realtime.webcam import main
status = main(["--source", sys.argv[1], "--quit-after", "1000000"])  # closes at the end of the file
window = kept["window"]
stats = window.stats
shown = np.array([t for t, _ in window._recent])
fps = (len(shown) - 1) / (shown[-1] - shown[0]) if len(shown) > 1 else 0.0
print(json.dumps({"status": status, "decoded": stats.decoded, "processed": stats.processed, "dropped": stats.dropped,
                  "shown": window.frames_drawn, "shown_fps": fps,
                  "latency_p50_ms": float(np.percentile(stats.latencies_ms, 50)),
                  "latency_p95_ms": float(np.percentile(stats.latencies_ms, 95))}))
"""


def child_env(folder: Path, offscreen: bool = False) -> dict[str, str]:
    # the checkout first; a PYTHONPATH already set stays after it (e.g. MediaPipe installed with pip --target)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)}
    if offscreen:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}, min {min(values):.2f}, max {max(values):.2f}"


def api_part(checkouts: dict[str, Path], clip: Path, rounds: int) -> dict:
    """fps per round of each system; ratios ours/MediaPipe per round."""
    systems = {name: (folder, "ours") for name, folder in checkouts.items()} | {"mediapipe": (REPO, "mediapipe")}
    children = {name: subprocess.Popen([sys.executable, "-c", API_CHILD, kind, str(clip.resolve())], cwd=folder,
                                       env=child_env(folder), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for name, (folder, kind) in systems.items()}
    try:
        for name, child in children.items():
            if child.stdout.readline().strip() != "ready":
                raise SystemExit(f"error: the {name} child did not start")
        fps: dict[str, list[float]] = {name: [] for name in children}
        names = list(children)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:  # rotated: no system always first
                children[name].stdin.write("go\n")
                children[name].stdin.flush()
                fps[name].append(json.loads(children[name].stdout.readline())["fps"])
            print(f"[api] round {r + 1}: " + ", ".join(f"{n} {fps[n][-1]:.1f} fps" for n in names), flush=True)
    finally:
        for child in children.values():
            child.stdin.close()
            child.wait()
    out: dict = {"fps": fps}
    for name in checkouts:
        ratios = [a / b for a, b in zip(fps[name], fps["mediapipe"])]
        out[f"ratio_{name}"] = ratios
        print(f"[api] {name}: fps {spread(fps[name])}; ours/MediaPipe per round "
              f"{[round(x, 2) for x in ratios]}, {spread(ratios)}", flush=True)
    print(f"[api] mediapipe: fps {spread(fps['mediapipe'])}", flush=True)
    return out


def video_part(checkouts: dict[str, Path], clip: Path, rounds: int) -> dict:
    """The demo command's fps per round, read from its summary line."""
    fps: dict[str, list[float]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, folder in checkouts.items():
                out = Path(tmp) / f"{name}{r}"
                done = subprocess.run([sys.executable, "-m", "realtime.video", str(clip.resolve()), "-o", f"{out}.mp4",
                                       "--landmarks", f"{out}.jsonl"], cwd=folder, env=child_env(folder),
                                      capture_output=True, text=True)
                line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
                if done.returncode != 0 or " fps)" not in line:
                    raise SystemExit(f"error: {name}'s video run failed: {line}")
                fps[name].append(float(line.split(" fps)")[0].rsplit("(", 1)[1]))
            print(f"[video] round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f} fps" for n, v in fps.items()), flush=True)
    for name, values in fps.items():
        print(f"[video] {name}: fps {spread(values)}", flush=True)
    return {"fps": fps}


def live_part(checkouts: dict[str, Path], clip: Path, rounds: int) -> dict:
    """Per round and system: shown fps, drops, latency p50/p95 (``LIVE_CHILD``)."""
    runs: dict[str, list[dict]] = {name: [] for name in checkouts}
    for r in range(rounds):
        for name, folder in checkouts.items():
            done = subprocess.run([sys.executable, "-c", LIVE_CHILD, str(clip.resolve())], cwd=folder,
                                  env=child_env(folder, offscreen=True), capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"error: {name}'s live run failed: {done.stderr.strip().splitlines()[-1:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            run = runs[name][-1]
            print(f"[live] round {r + 1} {name}: {run['shown_fps']:.1f} fps shown, {run['dropped']} of "
                  f"{run['decoded']} dropped, latency p50 {run['latency_p50_ms']:.1f} ms, p95 "
                  f"{run['latency_p95_ms']:.1f} ms", flush=True)
    for name, values in runs.items():
        print(f"[live] {name}: shown fps {spread([v['shown_fps'] for v in values])}; dropped % "
              f"{spread([100 * v['dropped'] / v['decoded'] for v in values])}; latency p95 ms "
              f"{spread([v['latency_p95_ms'] for v in values])}", flush=True)
    return {"runs": runs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="api,video,live")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--baseline", help="another checkout, measured beside this one")
    p.add_argument("--clip", default=str(REPO / "assets" / "demo.mp4"))
    p.add_argument("--live-clip", help="the clip played as live (default: --clip)")
    p.add_argument("--json", help="write every number here")
    args = p.parse_args()
    checkouts = {"ours": REPO}
    if args.baseline:
        if not (Path(args.baseline) / "realtime").is_dir():
            print(f"error: {args.baseline} is not a checkout of this project", file=sys.stderr)
            return 2
        checkouts["baseline"] = Path(args.baseline).resolve()
    clip = Path(args.clip)
    results: dict = {"rounds": args.rounds, "clip": str(clip), "checkouts": {k: str(v) for k, v in checkouts.items()}}
    parts = args.parts.split(",")
    if "api" in parts:
        results["api"] = api_part(checkouts, clip, args.rounds)
    if "video" in parts:
        results["video"] = video_part(checkouts, clip, args.rounds)
    if "live" in parts:
        results["live"] = live_part(checkouts, Path(args.live_clip or clip), args.rounds)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
