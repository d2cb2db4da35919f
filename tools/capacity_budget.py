"""Issue 24's capacity lever against the inference budget: which wider 68-point networks fit 2 ms a face?

    python tools/capacity_budget.py [--candidates 0.5:2,0.75:2,0.75:5,1.0:5] [--rounds 5]
                                    [--seconds 1.5] [--threads 2] [--json OUT.json]

Each candidate is ``WIDTH:SEPARABLE[:TRUNK[:WIDTHS]]``: the bundled architecture (RCN+, 80 px grey
input, 68 points, ``assets/rcn68_faces.safetensors``'s config) at that width multiplier of the
``rcnplus`` preset, with its ``SEPARABLE`` finest levels' 3x3 branch convs depthwise-separable,
optionally ``TRUNK`` trunk levels below the finest separable too (``--trunk-separable``) and the
channels of each level given as ``WIDTHS``, finest first, joined by ``/`` (``--level-widths``), e.g.
``0.5:3:1`` or ``0.5:2:0:16/32/32/32/32`` (the fast student). Random weights: the time of a
network does not depend on its values. Each is exported to onnxruntime (the CLI's fp32 CPU
backend) and timed at batch 1; the candidates run in turn, in an order rotated every round, so a
change in the machine's load shows as a spread rather than as a difference. Printed: multiply-adds,
parameters, ms a face per round, its median, min and max, and each round's time over the first
candidate's in the same round (the steadier number on a host whose speed drifts). Run it with the machine otherwise idle
(pause a training run: ``kill -STOP``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime.backends import make_backend  # noqa: E402
from realtime.core.assets import LANDMARKS_68  # noqa: E402
from realtime.core.measure import machine, seconds_per_call  # noqa: E402
from realtime.models.model import build_model, multiply_adds  # noqa: E402
from realtime.models.presets import make_config  # noqa: E402
from realtime.models.weights import load_landmark_model  # noqa: E402

BUDGET_MS = 2.0


def candidate(spec: str):
    """``"0.75:2"`` -> the bundled architecture at width 0.75 with 2 separable levels (random weights);
    ``"0.5:3:1"`` also one separable trunk level, ``"0.5:2:0:16/32/32/32/32"`` those level widths."""
    parts = spec.split(":")
    try:
        if not 2 <= len(parts) <= 4:
            raise ValueError
        width, separable = float(parts[0]), int(parts[1])
        trunk = int(parts[2]) if len(parts) > 2 else 0
        widths = tuple(int(w) for w in parts[3].split("/")) if len(parts) > 3 else None
    except ValueError:
        raise SystemExit(f"error: candidate {spec!r} is not WIDTH:SEPARABLE[:TRUNK[:WIDTHS]], e.g. 0.75:2 or "
                         "0.5:3:1 or 0.5:2:0:16/32/32/32/32")
    bundled = load_landmark_model(LANDMARKS_68, "cpu").config
    config = make_config(bundled.preset, num_points=bundled.num_points, layout=bundled.layout,
                         width_mult=width, in_channels=bundled.in_channels, decoder=bundled.decoder,
                         normalise=bundled.normalise, upsample=bundled.upsample, separable=separable,
                         trunk_separable=trunk, level_widths=widths)
    return build_model(config).eval()


def run_child(args: argparse.Namespace) -> int:
    """One candidate's process: prints its sizes, then one timing (ms a face) per line read."""
    model = candidate(args.child)
    backend = make_backend(args.backend, model, "cpu")
    x = torch.rand(1, model.config.in_channels, model.config.input_size, model.config.input_size)
    print(json.dumps({"multiply_adds": multiply_adds(model),
                      "parameters": sum(t.numel() for t in model.parameters())}), flush=True)
    for _ in sys.stdin:
        print(seconds_per_call(backend, x, "cpu", args.seconds) * 1e3, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", default="0.5:2,0.5:5,0.625:5,0.75:2,0.75:5,1.0:5")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=1.5, help="timing per candidate per round")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime's intra-op threads, as the CLI's 2-core default")
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--json", help="write the numbers here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        return run_child(args)

    specs = args.candidates.split(",")
    for spec in specs:
        candidate(spec)  # a bad spec fails here, before any child starts
    children = {spec: subprocess.Popen(
        [sys.executable, __file__, "--child", spec, "--threads", str(args.threads), "--backend", args.backend,
         "--seconds", str(args.seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for spec in specs}
    rows = {spec: json.loads(children[spec].stdout.readline()) | {"ms": []} for spec in specs}
    for r in range(args.rounds):
        order = specs[r % len(specs):] + specs[:r % len(specs)]
        for spec in order:
            children[spec].stdin.write("go\n")
            children[spec].stdin.flush()
            rows[spec]["ms"].append(float(children[spec].stdout.readline()))
        print(f"round {r + 1}: " + ", ".join(f"{s} {rows[s]['ms'][-1]:.2f} ms" for s in specs), flush=True)
    for proc in children.values():
        proc.stdin.close()
        proc.wait()

    print(f"\n{machine()}; {args.backend}, batch 1, {args.rounds} rounds of {args.seconds} s each")
    print(f"| width : separable levels [: trunk : level widths] | multiply-adds | parameters | ms a face, median (min-max) | "
          f"time / {specs[0]}'s in the same round, median (min-max) | <= 2 ms |")
    print("|---|---|---|---|---|---|")
    out = {"machine": machine(), "backend": args.backend, "rounds": args.rounds, "candidates": {}}
    for spec in specs:
        row, ms = rows[spec], rows[spec]["ms"]
        med = statistics.median(ms)
        ratio = [a / b for a, b in zip(ms, rows[specs[0]]["ms"])]
        print(f"| {spec} | {row['multiply_adds'] / 1e6:.0f} M | {row['parameters'] / 1e3:.0f} k | "
              f"{med:.2f} ({min(ms):.2f}-{max(ms):.2f}) | "
              f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}) | {'yes' if max(ms) <= BUDGET_MS else 'no' if min(ms) > BUDGET_MS else 'in some rounds'} |")
        out["candidates"][spec] = {"multiply_adds": row["multiply_adds"], "parameters": row["parameters"],
                                   "ms_per_face": ms, "median_ms": med,
                                   "ratio_to_first": ratio}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
