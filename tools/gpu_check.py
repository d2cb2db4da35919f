"""The prepared device check: everything a GPU machine should measure, in one call, within a budget.

    python tools/gpu_check.py [--device cuda] [--out DIR] [--budget-s 480] [--quick]

Steps, each a subprocess with its share of the time left (a step that fails or runs out of time is
recorded with the end of its output, and the check goes on):

1. ``env``: torch, CUDA, the device's name, which optional packages are importable;
2. ``tests``: ``pytest -m gpu`` (the CUDA parity and device tests; on a CPU they all skip);
3. ``landmarks``: ``python -m realtime.bench --parts landmarks`` on the device, every backend the
   device offers, batch 1 to 4096 on CUDA (1 to 64 on CPU);
4. ``pipeline``: ``python -m realtime.bench --parts pipeline,live`` on the device (file pipeline and
   live mode on the bundled clip; the bench compares with nothing else here);
5. ``streams``: ``python -m realtime.bench --parts streams``: 1, 4 and 16 copies of the clip at once
   (one detector batch per step, one landmark batch over all streams on CUDA), fps in all;
   then ``cpu_pipeline``: the file pipeline on this machine's CPU cores, the comparator of the
   device's pipeline in the same check;
6. ``train``: a training-throughput probe, ``python -m train fit`` of the bundled model's preset
   (``rcnplus``, width 0.5) on synthetic faces, batch 64, bf16 autocast on CUDA: updates per second.

It writes three files into ``--out``: ``gpu_check.json`` (every number, every step's status and
seconds), ``gpu_check.md`` (the same as tables, with the machine named) and ``gpu_check.log`` (each
step's command and the end of its output). The device machine returns at most 8 files from its
``$OUT``, two folders deep, so the bench's own files are read from a scratch folder and folded in.

On the lent GPU machine (bare, no network: ``/work/.library/device/README.md``) PyAV is not
installed; carry its wheel (Python 3.12, manylinux x86-64) in an ignored ``.whl/`` folder and run::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 tools/gpu_check.py --device cuda --out $OUT

Run it on a CPU first (``--device cpu --quick``) so that a GPU run does not fail on plumbing.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("av", "cv2", "onnxruntime", "openvino", "torch_tensorrt", "PySide6", "mediapipe")
STEPS = ("env", "tests", "landmarks", "pipeline", "streams", "cpu_pipeline", "train")


def run_step(name: str, command: list[str], timeout_s: float, log: list[str]) -> tuple[str, float, str]:
    """(status, seconds, output tail) of one command; status ok, failed (exit N) or timed out."""
    start = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(timeout_s, 1))
        status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
        output = (done.stdout + done.stderr)[-4000:]
    except subprocess.TimeoutExpired as exc:
        status = f"timed out after {timeout_s:.0f} s"
        output = ((exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace"))[-4000:] \
            if isinstance(exc.stdout, bytes) or isinstance(exc.stderr, bytes) else str(exc.stdout or "")[-4000:]
    seconds = time.monotonic() - start
    log.append(f"## {name}: {status} in {seconds:.0f} s\n$ {' '.join(command)}\n{output}\n")
    print(f"[gpu_check] {name}: {status} in {seconds:.0f} s", flush=True)
    return status, seconds, output


def environment(device: str) -> dict:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": device, "cpu_count": os.cpu_count(),
            "packages": {name: importlib.util.find_spec(name) is not None for name in OPTIONAL}}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1)
    from realtime.core.measure import machine

    info["machine"] = machine()
    return info


def bench(device: str, parts: str, scratch: Path, extra: list[str], timeout_s: float, log: list[str]) -> dict:
    out = scratch / parts.replace(",", "_")
    status, seconds, tail = run_step(f"bench {parts}", [sys.executable, "-m", "realtime.bench", "--device", device,
                                                       "--parts", parts, "-o", str(out), *extra], timeout_s, log)
    result: dict = {"status": status, "seconds": round(seconds, 1)}
    if (out / "bench.json").is_file():
        result["bench"] = json.loads((out / "bench.json").read_text())
    else:
        result["tail"] = tail[-1500:]
    return result


def train_probe(device: str, steps: int, scratch: Path, timeout_s: float, log: list[str]) -> dict:
    run = scratch / "train_probe"
    command = [sys.executable, "-m", "train", "fit", "--preset", "rcnplus", "--width-mult", "0.5",
               "--data", "synth:train?n=512", "--val", "synth:val?n=64", "--out", str(run), "--steps", str(steps),
               "--eval-every", str(steps), "--batch-size", "64", "--optimizer", "adam", "--device", device, "--quiet"]
    if device.startswith("cuda"):
        command.append("--bf16")
    status, seconds, tail = run_step("train", command, timeout_s, log)
    result: dict = {"status": status, "seconds": round(seconds, 1), "steps": steps, "batch": 64,
                    "bf16": device.startswith("cuda")}
    log_csv = run / "log.csv"
    if log_csv.is_file():
        rows = [r for r in csv.DictReader(log_csv.open()) if r.get("seconds")]
        if len(rows) >= 2:  # from the first logged update on: start-up and data generation left out
            first, last = rows[0], rows[-1]
            span = float(last["seconds"]) - float(first["seconds"])
            if span > 0:
                result["updates_per_s"] = round((int(last["step"]) - int(first["step"])) / span, 2)
    if "updates_per_s" not in result:
        result["tail"] = tail[-1500:]
    return result


def render(report: dict) -> str:
    env = report["env"]
    lines = [f"# Device check on {env.get('gpu') or env['machine']}", "",
             f"`{report['command']}`; {env['machine']}; CUDA {env['cuda']}; device `{env['device']}`; "
             f"{report['seconds']:.0f} s in all.", "",
             "Optional packages: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in env["packages"].items()) + ".",
             "", "| step | status | seconds |", "|---|---|---|"]
    for name in STEPS[1:]:
        step = report.get(name, {})
        lines.append(f"| {name} | {step.get('status', 'not run')} | {step.get('seconds', '')} |")
    tests = report.get("tests", {})
    if tests.get("summary"):
        lines += ["", f"GPU tests: {tests['summary']}"]
    marks = report.get("landmarks", {}).get("bench", {}).get("landmarks", {})
    if marks:
        batches = sorted({int(b) for r in marks.values() if "batches" in r for b in r["batches"]})
        lines += ["", "## Landmark network alone (faces/s)", "",
                  "| backend | " + " | ".join(f"batch {b}" for b in batches) + " |",
                  "|---|" + "---|" * len(batches)]
        for name, r in marks.items():
            if "batches" in r:
                cells = [f"{r['batches'][str(b)]['faces_per_s']:.0f}" if str(b) in r["batches"] else "-" for b in batches]
            else:
                cells = [r.get("skipped", "")] + [""] * (len(batches) - 1)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    pipe = report.get("pipeline", {}).get("bench", {})
    if pipe.get("pipeline"):
        p = pipe["pipeline"]
        lines += ["", f"## Pipeline on the bundled clip: {p['fps']:.1f} fps (decode, detect, track, landmarks, "
                  "smoothing, pose; JSON out, no video encode)"]
    if pipe.get("live"):
        live = pipe["live"]
        lat = live.get("latency_ms", {})
        lines += ["", f"Live mode: {live.get('processed')} processed, {live.get('dropped')} dropped; latency p50 "
                  f"{lat.get('p50', float('nan')):.1f} ms, p95 {lat.get('p95', float('nan')):.1f} ms, max "
                  f"{lat.get('max', float('nan')):.1f} ms."]
    train = report.get("train", {})
    if "updates_per_s" in train:
        lines += ["", f"## Training probe: {train['updates_per_s']} updates/s (rcnplus width 0.5, batch 64"
                  f"{', bf16' if train['bf16'] else ''}, {train['steps']} updates)"]
    cpu = report.get("cpu_pipeline", {}).get("bench", {}).get("pipeline")
    if cpu and pipe.get("pipeline"):
        lines += ["", f"Same pipeline on this machine's CPU cores: {cpu['fps']:.1f} fps; device `{env['device']}` / CPU "
                  f"**{pipe['pipeline']['fps'] / cpu['fps']:.2f}x**."]
    streams = report.get("streams", {}).get("bench", {}).get("streams")
    if streams:
        lines += ["", "## Several streams at once (" + ("one landmark batch over all streams" if streams["pool_landmarks"]
                                                        else "landmarks per stream") + ")", "",
                  "| streams | fps in all | fps per stream | latency p95 ms |", "|---|---|---|---|"]
        for r in streams["runs"].values():
            lines.append(f"| {r['streams']} | {r['fps']:.1f} | {r['per_stream_fps']:.1f} | "
                         f"{r['latency_ms'].get('p95', float('nan')):.1f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/gpu_check.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="torch device to check (cuda, cuda:N, or cpu for a dry run)")
    p.add_argument("--out", default="docs/bench_gpu", help="folder for gpu_check.json, .md and .log")
    p.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget of the whole check, seconds")
    p.add_argument("--quick", action="store_true", help="short runs (a dry run of the plumbing)")
    args = p.parse_args(argv)
    start, log = time.monotonic(), []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda")

    def left(share: float) -> float:
        return max(5.0, share * (args.budget_s - (time.monotonic() - start)))

    report: dict = {"command": " ".join(["python tools/gpu_check.py", *(sys.argv[1:] if argv is None else argv)]),
                    "env": environment(args.device)}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        scratch = Path(tmp)
        status, seconds, tail = run_step("tests", [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                                                   "tests"], left(0.2), log)
        report["tests"] = {"status": status, "seconds": round(seconds, 1),
                           "summary": next((ln for ln in reversed(tail.splitlines()) if " in " in ln and
                                            ("passed" in ln or "skipped" in ln or "failed" in ln)), "")}
        batches = "1,8" if args.quick else ("1,8,64,256,1024,4096" if cuda else "1,8,64")
        report["landmarks"] = bench(args.device, "landmarks", scratch, ["--batches", batches, "--backends", "all"]
                                    + (["--quick"] if args.quick else []), left(0.4), log)
        report["pipeline"] = bench(args.device, "pipeline,live", scratch, ["--backend", "auto" if not cuda else "eager"]
                                   + (["--quick"] if args.quick else []), left(0.5), log)
        report["streams"] = bench(args.device, "streams", scratch, ["--streams", "1,2" if args.quick else
                                  ("1,4,16" if cuda else "1,4"), "--backend", "auto" if not cuda else "eager"]
                                  + (["--quick"] if args.quick else []), left(0.5), log)
        # the comparator of the device's pipeline, in the same check (run on a CPU dry run too, for the plumbing)
        report["cpu_pipeline"] = bench("cpu", "pipeline", scratch / "cpu", (["--quick"] if args.quick else []),
                                       left(0.3), log)
        report["train"] = train_probe(args.device, 20 if args.quick else 200, scratch, left(0.9), log)
    report["seconds"] = round(time.monotonic() - start, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (out / "gpu_check.md").write_text(render(report))
    (out / "gpu_check.log").write_text("\n".join(log))
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
