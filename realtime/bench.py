"""``python -m realtime.bench``: how fast, measured, against dlib and MediaPipe in the same run.

    python -m realtime.bench [--weights W] [--clip assets/demo.mp4] [--device cpu|cuda]
                             [--backends all|NAME,...] [--batches 1,8,32] [--no-dlib] [--quick]
                             [--parts landmarks,pipeline,dlib,mediapipe,live] [-o bench_out]
    python -m realtime.bench --parts streams [--streams 1,4,16] [--pool auto|on|off]

Six parts (``streams`` only when asked), each printed as it finishes and all written to ``OUT/bench.json``, ``OUT/bench.md``
and ``OUT/bench.png`` (throughput against batch size, one line per backend):

a. **landmarks**: the network alone on ready crops, faces/s and ms/face against batch size for
   every backend available on the device (``realtime.backends``);
b. **pipeline**: the end-to-end file pipeline on the clip (decode, detection when the tracker asks,
   tracking, crops, landmarks, smoothing, pose): fps and per-stage milliseconds (mean, p50, p95),
   which is where the time goes; each frame's JSON line is built as ``--landmarks`` writes it
   (kept in memory, no video encode);
c. **dlib**: the same clip through dlib's HOG detector + 68-point shape predictor on every frame
   (the usual dlib pipeline; optional dependency, ``pip install -e '.[teacher]'``): fps, the speed
   ratio, and both systems' NME against the clip's ground truth (``realtime.clipscore``);
d. **live**: the clip played as a 30 fps camera through the live pipeline: latency percentiles
   (frame arrival to result) and frames dropped;
e. **mediapipe**: the same clip through MediaPipe's face mesh (its own detector + 468-point mesh,
   tracking mode, decode and a JSON line per frame included; ``realtime.compare.mediapipe_mesh``, optional,
   skipped with the reason when missing): fps, the ratio ours/MediaPipe, and both systems' NME on
   the 7 points the two layouts share (eye and mouth corners, nose tip). Its accuracy on 300-W faces
   is ``python -m train.compare``;
f. **streams**: N copies of the clip processed at once (``realtime.pipeline.runners.run_streams``: one
   detector batch per step, and on a GPU one landmark batch over all streams): fps in all, fps
   per stream and latency, for each N of ``--streams``.

``--quick`` (CI) cuts every part short: a few repeats, 60 frames, 3 s of live play. Speeds are
printed, never asserted: they depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from realtime.backends import available_backends, make_backend
from realtime.compare import mediapipe_mesh as mpm
from realtime.compare.dlib_model import resolve_model_path
from realtime.core.assets import DEMO_CLIP as DEFAULT_CLIP
from realtime.core.assets import LANDMARKS_68 as DEFAULT_WEIGHTS, WEIGHTS_HELP, weights_path
from realtime.core.atomic import atomic_path, write_text_atomic
from realtime.core.cliargs import Parser, Range, name_list, number, number_list
from realtime.core.errors import UserError, run_command
from realtime.core.measure import machine, seconds_per_call, shown_path
from realtime.core.outpaths import Output, check_outputs, make_folders
from realtime.core.packet import packet_to_json
from realtime.io.capture import VideoFileSource
from realtime.models.model import build_model
from realtime.models.presets import make_config
from realtime.models.weights import load_landmark_model
from realtime.pipeline.cliptruth import ClipTruth, nearest_face, score, track_clip
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.live_pipeline import LivePipeline
from realtime.pipeline.pooling import pools_landmarks
from realtime.pipeline.processor import FrameProcessor
from realtime.pipeline.runners import run_file, run_streams

# File mode's arrival-to-result latency is mostly time spent queued behind earlier frames, so part b
# leaves it out; part d measures latency where it matters.
STAGES = ("capture_ms", "detect_ms", "track_ms", "landmarks_ms", "smooth_ms", "pose_ms", "process_ms")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    v = np.asarray(values, np.float64)
    return {"n": len(v), "mean": float(v.mean()), "p50": float(np.percentile(v, 50)),
            "p90": float(np.percentile(v, 90)), "p95": float(np.percentile(v, 95)),
            "p99": float(np.percentile(v, 99)), "max": float(v.max())}


# ---------------------------------------------------------------- a. the network alone

def bench_model(weights: Path, preset: str | None, device: str):
    """The network of part a: the weights file's, or a preset's with random weights (speed only)."""

    if preset is None:
        return load_landmark_model(weights, device).eval()
    return build_model(make_config(preset)).to(device).eval()


def landmark_throughput(model, device: str, names: list[str] | None, batches: list[int],
                        seconds: float) -> dict[str, dict]:
    """Per backend: ``{"batches": {b: {"faces_per_s", "ms_per_face"}}}`` or ``{"skipped": reason}``."""

    c, s = model.config.in_channels, model.config.input_size
    out: dict[str, dict] = {}
    for name, reason in available_backends(device).items():
        if names is not None and name not in names:
            continue
        if reason is not None:
            out[name] = {"skipped": reason}
            continue
        try:
            backend = make_backend(name, model, device)
            rows = {}
            for batch in batches:
                per_call = seconds_per_call(backend, torch.rand(batch, c, s, s, device=device), device, seconds)
                rows[batch] = {"faces_per_s": batch / per_call, "ms_per_face": per_call * 1e3 / batch}
            out[name] = {"batches": rows}
        except (UserError, RuntimeError) as exc:
            out[name] = {"skipped": f"failed: {str(exc).splitlines()[0]}"}
        print(f"[landmarks] {name}: " + (", ".join(f"b{b} {r['faces_per_s']:.0f} faces/s"
                                                   for b, r in out[name]["batches"].items())
                                         if "batches" in out[name] else out[name]["skipped"]), flush=True)
    return out


# ---------------------------------------------------------------- b. the file pipeline

def pipeline_run(weights: Path, clip: Path, device: str, backend: str, max_frames: int | None) -> dict:
    """fps and per-stage timings of the file pipeline over the clip (up to ``max_frames``)."""

    processor = FrameProcessor.from_config(PipelineConfig(weights, device=device, backend=backend))
    processor.landmarker.warmup()
    source = VideoFileSource(clip)
    timings: dict[str, list[float]] = {k: [] for k in STAGES}
    faces, detections, jsonl = [], [0], []

    def on_packet(packet) -> None:
        jsonl.append(packet_to_json(packet))  # what --landmarks writes, minus the disk
        for k in STAGES:
            if k in packet.timings:
                timings[k].append(packet.timings[k])
        faces.append(len(packet.faces))
        detections[0] += any(f.detection_score is not None for f in packet.faces)
        if max_frames is not None and len(faces) >= max_frames:
            source.stop()

    stats = run_file(source, processor, on_packet)
    out = {"frames": stats.processed, "wall_s": stats.wall_s, "fps": stats.fps,
           "faces_per_frame": float(np.mean(faces)) if faces else 0.0, "frames_detected": detections[0],
           "stages_ms": {k: percentiles(v) for k, v in timings.items()}}
    print(f"[pipeline] {stats.processed} frames at {stats.fps:.1f} fps; per frame: " +
          ", ".join(f"{k[:-3]} {out['stages_ms'][k]['mean']:.2f} ms" for k in STAGES if timings[k]), flush=True)
    return out


def streams_run(weights: Path, clip: Path, device: str, backend: str, counts: list[int], max_frames: int | None,
                pool: str = "auto") -> dict:
    """Aggregate fps of N copies of the clip processed at once (``realtime.pipeline.runners.run_streams``,
    records serialised as ``--landmarks`` writes them, no video encode), for each N in ``counts``.
    ``pool`` "auto" batches the landmarks of all streams on a GPU only (``pools_landmarks``);
    "on"/"off" force it."""

    config = PipelineConfig(weights, device=device, backend=backend)
    first = FrameProcessor.from_config(config)
    first.landmarker.warmup()
    batched = pools_landmarks(first.landmarker) if pool == "auto" else pool == "on"
    out: dict = {"pool_landmarks": batched, "runs": {}}
    for n in counts:
        processors = [first] + [FrameProcessor.from_config(config, first.landmarker, first.detector) for _ in range(n - 1)]
        for p in processors:
            p.reset()
        sources = [VideoFileSource(clip) for _ in range(n)]
        done = [0] * n

        def on_packet(i: int, packet, sources=sources, done=done) -> None:
            packet_to_json(packet)
            done[i] += 1
            if max_frames is not None and done[i] >= max_frames:
                sources[i].stop()

        stats = run_streams(sources, processors, on_packet, batch_landmarks=batched)
        frames, wall = sum(st.processed for st in stats), max(st.wall_s for st in stats)
        latencies = [v for st in stats for v in st.latencies_ms]
        out["runs"][n] = {"streams": n, "frames": frames, "wall_s": wall, "fps": frames / wall if wall else 0.0,
                          "per_stream_fps": frames / wall / n if wall else 0.0, "latency_ms": percentiles(latencies)}
        print(f"[streams] {n} at once: {frames} frames in {wall:.1f} s = {frames / wall:.1f} fps in all", flush=True)
    return out


# ---------------------------------------------------------------- c. dlib on the same clip

def dlib_run(clip: Path, truth, n: int) -> dict:
    """dlib HOG (upsample 0: the clip's face is ~90 px) + 68-point predictor on each of n frames."""
    try:
        import dlib
    except ImportError:
        return {"skipped": "dlib is not installed (pip install -e '.[teacher]')"}

    try:
        predictor = dlib.shape_predictor(str(resolve_model_path(None)))
    except UserError as exc:
        return {"skipped": str(exc)}

    detector = dlib.get_frontal_face_detector()
    points, busy = [], 0.0
    with VideoFileSource(clip) as source:
        for frame in source:
            rgb = frame.image
            if len(points) >= n:
                source.stop()
                break
            start = time.perf_counter()
            faces = [np.array([(p.x, p.y) for p in predictor(rgb, r).parts()], np.float64) for r in detector(rgb, 0)]
            busy += time.perf_counter() - start
            points.append(nearest_face(faces, truth.points[len(points)]))
    return {"frames": len(points), "fps": len(points) / busy if busy else 0.0, "points": points}


def compare_dlib(weights: Path, clip: Path, device: str, backend: str, n: int | None, ours_fps: float) -> dict:
    truth = ClipTruth.load(clip.with_name(clip.stem + "_truth.json"))
    n = len(truth.points) if n is None else min(n, len(truth.points))
    cut = ClipTruth(truth.points[:n], (min(truth.still[0], n), min(truth.still[1], n)), truth.layout)
    dl = dlib_run(clip, cut, n)
    out: dict = {"frames": n}
    try:
        ours = FrameProcessor.from_config(PipelineConfig(weights, device=device, backend=backend))
        out["ours"] = score(track_clip(ours, clip, cut, n), cut)
    except UserError as exc:  # a model without 68 points cannot be scored on the clip
        out["ours"] = {"skipped": str(exc)}
    out["ours"]["fps"] = ours_fps
    if "skipped" in dl:
        out["dlib"] = dl
    else:
        out["dlib"] = {**score(dl.pop("points"), cut), "fps": dl["fps"]}
        out["speed_ratio"] = ours_fps / dl["fps"] if dl["fps"] else float("nan")
    nme = lambda r: f"NME {r['nme_pct']:.2f}%" if "nme_pct" in r else r.get("skipped", "")  # noqa: E731
    print(f"[dlib] ours {ours_fps:.1f} fps, {nme(out['ours'])}; dlib "
          + (f"{out['dlib']['fps']:.1f} fps, {nme(out['dlib'])}; ratio {out['speed_ratio']:.1f}x"
             if "fps" in out["dlib"] else out["dlib"]["skipped"]), flush=True)
    return out


# ---------------------------------------------------------------- e. MediaPipe on the same clip

def compare_mediapipe(weights: Path, clip: Path, device: str, backend: str, n: int | None, ours_fps: float,
                      max_faces: int = 1) -> dict:
    """MediaPipe's fps beside ours (``ours_fps``, part b of the same run) and both systems' NME on the
    7 shared points (``realtime.compare.mediapipe_mesh``) against the clip's truth; {"skipped"} without mediapipe."""

    reason = mpm.missing_reason()
    if reason is not None:
        print(f"[mediapipe] skipped: {reason}", flush=True)
        return {"skipped": reason}
    truth = ClipTruth.load(clip.with_name(clip.stem + "_truth.json"))
    n = len(truth.points) if n is None else min(n, len(truth.points))
    cut = ClipTruth(truth.points[:n], (min(truth.still[0], n), min(truth.still[1], n)), truth.layout)
    mp = mpm.clip_run(clip, cut.points, n, max_faces)
    out: dict = {"frames": n, "points": {"ibug68": mpm.IBUG_INDICES.tolist(), "mesh468": mpm.MESH_INDICES.tolist()},
                 "settings": mp["settings"], "mediapipe": {**mpm.score7(mp["points"], cut.points), "fps": mp["fps"]}}
    processor = FrameProcessor.from_config(PipelineConfig(weights, device=device, backend=backend))
    if processor.landmarker.num_points == cut.points.shape[1]:
        ours = [None if p is None else mpm.shared_from_ibug(p) for p in track_clip(processor, clip, cut, n)]
        out["ours"] = mpm.score7(ours, cut.points)
    else:
        out["ours"] = {"skipped": f"the weights give {processor.landmarker.num_points} points, not the truth's 68"}
    out["ours"]["fps"] = ours_fps
    out["speed_ratio"] = ours_fps / mp["fps"] if mp["fps"] else float("nan")
    nme = lambda r: f"NME7 {r['nme_pct']:.2f}%" if "nme_pct" in r else r["skipped"]  # noqa: E731
    print(f"[mediapipe] ours {ours_fps:.1f} fps, {nme(out['ours'])}; MediaPipe {mp['fps']:.1f} fps, "
          f"{nme(out['mediapipe'])}, face found in {100 * out['mediapipe']['found']:.1f}% of frames; "
          f"ratio ours/MediaPipe {out['speed_ratio']:.2f}x", flush=True)
    return out


# ---------------------------------------------------------------- d. live latency

def live_run(weights: Path, clip: Path, device: str, backend: str, seconds: float | None) -> dict:
    """The clip as a live camera at its own rate: latency percentiles and drops."""

    processor = FrameProcessor.from_config(PipelineConfig(weights, device=device, backend=backend))
    processor.landmarker.warmup()
    source = VideoFileSource(clip, as_live=True)
    start = time.monotonic()
    with LivePipeline(source, processor) as live:
        for _ in live:
            if seconds is not None and time.monotonic() - start > seconds:
                break
    stats = live.stats
    out = {"rate_hz": source.rate_hz, "decoded": stats.decoded, "processed": stats.processed,
           "dropped": stats.dropped, "latency_ms": percentiles(stats.latencies_ms)}
    lat = out["latency_ms"]
    print(f"[live] {stats.processed} of {stats.decoded} frames, {stats.dropped} dropped; latency p50 "
          f"{lat.get('p50', float('nan')):.1f} ms, p95 {lat.get('p95', float('nan')):.1f} ms, "
          f"max {lat.get('max', float('nan')):.1f} ms", flush=True)
    return out


# ---------------------------------------------------------------- report

def render(results: dict) -> str:
    weights = f"weights `{results['weights']}`"
    if results.get("preset"):
        others = set(results) & {"pipeline", "dlib", "mediapipe", "live"}
        weights = f"random `{results['preset']}` weights for part a (speed only)" + (f", {weights} for the rest" if others else "")
    lines = ["# Benchmark", "", f"`{results['command']}` on {results['machine']}, device `{results['device']}`, {weights}.", ""]
    lm = results.get("landmarks", {})
    if lm:
        batches = sorted({int(b) for r in lm.values() for b in r.get("batches", {})})
        lines += ["## a. Landmark network alone (faces/s; ms/face in brackets)", "",
                  f"Network: `{results['landmark_model']}`.", "",
                  "| backend | " + " | ".join(f"batch {b}" for b in batches) + " |", "|---|" + "---|" * len(batches)]
        for name, r in lm.items():
            if "batches" in r:
                cells = [f"{r['batches'][b]['faces_per_s']:.0f} ({r['batches'][b]['ms_per_face']:.2f})"
                         if b in r["batches"] else "-" for b in batches]
            else:
                cells = [f"skipped: {r['skipped']}"] + [""] * (len(batches) - 1)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    p = results.get("pipeline")
    if p:
        lines += [f"## b. File pipeline on the clip: {p['fps']:.1f} fps ({p['frames']} frames, "
                  f"faces from the detector in {p['frames_detected']} of them, {p['faces_per_frame']:.2f} faces/frame)", "",
                  "| stage | mean ms | p50 | p95 |", "|---|---|---|---|"]
        for k, v in p["stages_ms"].items():
            if v.get("n"):
                lines.append(f"| {k[:-3]} | {v['mean']:.2f} | {v['p50']:.2f} | {v['p95']:.2f} |")
        lines.append("")
    d = results.get("dlib")
    if d:
        lines += ["## c. Against dlib (HOG + 68-point predictor) on the same clip", "",
                  "| system | fps | NME (outer eyes) | face found |", "|---|---|---|---|"]
        for name in ("ours", "dlib"):
            r = d[name]
            if "nme_pct" in r:
                lines.append(f"| {name} | {r['fps']:.1f} | {r['nme_pct']:.2f}% | {100 * r['found']:.1f}% |")
            else:
                lines.append(f"| {name} | {r.get('fps', float('nan')):.1f} | {r['skipped']} | |")
        if "speed_ratio" in d:
            lines += ["", f"Speed ratio: **{d['speed_ratio']:.1f}x** dlib."]
        lines += ["", "The clip's truth is dlib's own labels of the source portrait, warped per frame, so dlib's NME "
                  "shows how well dlib agrees with itself under the clip's motion, and ours is the distance from "
                  "dlib's labels: it is not a contest of accuracy against human labels."]
        lines.append("")
    st = results.get("streams")
    if st:
        pooled = "one landmark batch over all streams" if st["pool_landmarks"] else "landmarks per stream (exact)"
        lines += [f"## f. Several streams at once: N copies of the clip ({pooled}; one detector batch per step)", "",
                  "| streams | frames | fps in all | fps per stream | latency p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
        for r in st["runs"].values():
            lines.append(f"| {r['streams']} | {r['frames']} | {r['fps']:.1f} | {r['per_stream_fps']:.1f} | "
                         f"{r['latency_ms'].get('p50', 0):.1f} | {r['latency_ms'].get('p95', 0):.1f} |")
        lines.append("")
    lines += render_mediapipe(results.get("mediapipe"))
    live = results.get("live")
    if live:
        lat = live["latency_ms"]
        lines += ["## d. Live mode, the clip as a camera at its own rate", "",
                  f"{live['processed']} of {live['decoded']} frames processed, {live['dropped']} dropped at the entrance.",
                  "", "| latency | p50 | p90 | p99 | max |", "|---|---|---|---|---|",
                  f"| ms | {lat.get('p50', 0):.1f} | {lat.get('p90', 0):.1f} | {lat.get('p99', 0):.1f} | "
                  f"{lat.get('max', 0):.1f} |", ""]
    return "\n".join(lines)


def render_mediapipe(m: dict | None) -> list[str]:
    if not m:
        return []
    lines = ["## e. Against MediaPipe's face mesh on the same clip", ""]
    if "skipped" in m:
        return lines + [f"Skipped: {m['skipped']}.", ""]
    lines += ["| system | fps (decode + everything + a JSON line a frame) | NME, 7 shared points (outer eyes) "
              "| median | face found |", "|---|---|---|---|---|"]
    for name, label in (("ours", "ours (part b)"), ("mediapipe", "MediaPipe face mesh 0.10.21")):
        r = m[name]
        cells = (f"{r['nme_pct']:.2f}% | {r['nme_median_pct']:.2f}% | {100 * r['found']:.1f}%" if "nme_pct" in r
                 else f"{r['skipped']} | | ")
        lines.append(f"| {label} | {r['fps']:.1f} | {cells} |")
    pairs = ", ".join(f"{i}->{j}" for i, j in zip(m["points"]["ibug68"], m["points"]["mesh468"]))
    return lines + ["", f"Speed ratio ours/MediaPipe: **{m['speed_ratio']:.2f}x**. MediaPipe settings: "
                    + ", ".join(f"{k}={v}" for k, v in m["settings"].items()) + ".", "",
                    f"Shared points, iBUG-68 -> mesh-468 (0-based): {pairs} (eye corners, mouth corners, nose "
                    "tip; `realtime/compare/mediapipe_mesh.py`). The clip's truth is dlib's labels of its portrait, warped per "
                    "frame, so these NMEs are distances from dlib's labels; accuracy against human labels (300-W "
                    "faces): `python -m train.compare`.", ""]


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.get("landmarks", {}).items():
        if "batches" in r:
            b = sorted(int(k) for k in r["batches"])
            ax.plot(b, [r["batches"][k]["faces_per_s"] for k in b], marker="o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="batch size (faces)", ylabel="faces / s",
           title=f"landmark network, {results['device']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m realtime.bench", description=__doc__.split("\n\n")[0], version_weights=DEFAULT_WEIGHTS)
    p.add_argument("--weights", type=weights_path, default=DEFAULT_WEIGHTS, help=WEIGHTS_HELP)
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="clip with a _truth.json beside it")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N")
    p.add_argument("--backend", default="auto", help="landmark backend of the pipeline parts (b-d), as the CLIs")
    p.add_argument("--backends", default="all", help="backends for part a: all, or a comma list")
    p.add_argument("--preset", help="part a only: time this preset (e.g. rcn_300w) with random weights instead")
    p.add_argument("--batches", default=None, help="batch sizes for part a (default 1,2,4,...,64 on CPU, "
                   "1,...,1024 on CUDA; 1,8 with --quick)")
    p.add_argument("--parts", default="landmarks,pipeline,dlib,mediapipe,live", help="comma list of the parts to run")
    p.add_argument("--no-dlib", action="store_true", help="skip part c")
    p.add_argument("--streams", default=None, help="part streams (not in the default parts): comma list of stream "
                   "counts (default 1,4 on CPU, 1,4,16 on CUDA)")
    p.add_argument("--pool", choices=("auto", "on", "off"), default="auto", help="part streams: one landmark batch "
                   "over all streams (auto: on a GPU only)")
    p.add_argument("--mediapipe-faces", type=number(int, 1, 64), default=1, help="part e: MediaPipe's max_num_faces (its default 1; "
                   "in tracking mode its detector runs while fewer faces than this are tracked)")
    p.add_argument("--quick", action="store_true", help="short runs (CI): numbers are rough")
    p.add_argument("-o", "--out", default="bench_out", help="folder for bench.json, bench.md, bench.png")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    weights, clip = Path(args.weights), Path(args.clip)
    for path, what in ((weights, "weights"), (clip, "clip")):
        if not path.is_file():
            raise UserError(f"{what} not found: {path}")
    missing = check_outputs([Output(args.out, "-o", folder=True)], [weights, clip])
    parts = set(name_list("--parts", args.parts, ("landmarks", "pipeline", "dlib", "mediapipe", "live", "streams"),
                          "part", empty=True)) - ({"dlib"} if args.no_dlib else set())
    counts = number_list("--streams", args.streams, int, Range(1, 256)) if args.streams else (
        [1, 4, 16] if args.device.startswith("cuda") else [1, 4])
    if args.batches:
        batches = number_list("--batches", args.batches, int, Range(1, 65536))
    else:
        top = 1024 if args.device.startswith("cuda") else 64
        batches = [1, 8] if args.quick else [2 ** i for i in range(top.bit_length()) if 2 ** i <= top]
    names = None if args.backends == "all" else [s.strip() for s in args.backends.split(",")]
    frames = 60 if args.quick else None
    results: dict = {"command": " ".join(["python -m realtime.bench", *args.argv]), "machine": machine(),
                     "device": args.device, "weights": shown_path(weights), "preset": args.preset, "quick": args.quick}
    if "landmarks" in parts:
        model = bench_model(weights, args.preset, args.device)
        results["landmark_model"] = args.preset or shown_path(weights)
        results["landmarks"] = landmark_throughput(model, args.device, names, batches, 0.3 if args.quick else 2.0)
    if parts & {"pipeline", "dlib", "mediapipe"}:
        results["pipeline"] = pipeline_run(weights, clip, args.device, args.backend, frames)
    if "dlib" in parts:
        results["dlib"] = compare_dlib(weights, clip, args.device, args.backend, frames, results["pipeline"]["fps"])
    if "mediapipe" in parts:
        results["mediapipe"] = compare_mediapipe(weights, clip, args.device, args.backend, frames,
                                                 results["pipeline"]["fps"], args.mediapipe_faces)
    if "streams" in parts:
        results["streams"] = streams_run(weights, clip, args.device, args.backend, counts, frames, args.pool)
    if "live" in parts:
        results["live"] = live_run(weights, clip, args.device, args.backend, 3.0 if args.quick else None)
    out = Path(args.out)
    make_folders(missing)
    write_text_atomic(out / "bench.json", json.dumps(results, indent=1, default=float) + "\n")
    write_text_atomic(out / "bench.md", render(results))
    written = [out / "bench.json", out / "bench.md"]
    if results.get("landmarks"):
        try:
            plot(results, out / "bench.png")
            written.append(out / "bench.png")
        except ImportError:
            print("no plot: matplotlib is not installed (pip install -e '.[train]')", file=sys.stderr)
    print("wrote " + ", ".join(map(str, written)))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
