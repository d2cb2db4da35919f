"""``python -m train.faces68_ablate``: ablations of the bundled 68-point recipe on 300-W, at a short budget.

Each variant is ``train.recipes.faces68_recipe.recipe`` with one thing changed, trained for the same number of
updates (``--steps``, cosine schedule over that budget) on the same photo-grouped partition of 300-W's
training split, and scored on the same hold-out (never trained on) with the live decoder
(soft-argmax), from its LAST checkpoint:

- ``recipe``: the shipped recipe (starts from the teacher-trained model, the teacher faces as
  pre-training), shortened;
- ``no_teacher``: the same from random weights (no teacher faces);
- ``elt``: the recipe plus the 2018 paper's ELT term on every training image (weight ``--elt-weight``;
  on 300-W the paper uses L + ELT, probably no attribute);
- ``width1``: the full-width network (64 channels), from random weights (compare with ``no_teacher``:
  the teacher model is half width, so it cannot initialise it);
- ``softargmax``: the 2018 loss, soft-argmax L2 regression, in place of the 2016 cross-entropy;
- ``ce_softargmax``: the sum of both (``FitConfig.softargmax_weight``);
- ``rgb``: colour input (the grey ``--init`` converted: ``train.engine.fit.convert_input_channels``);
- ``lr_high`` / ``lr_low``: the cosine schedule from twice / half the recipe's peak learning rate;
- ``machine_labels``: 300-W's human labels plus faces labelled by the teacher (dlib's 68 points,
  ``python -m train.tools.make_teacher_labels``; folder ``--machine-labels``), marked as machine labels.

``--minutes M`` compares at equal CPU time instead of equal updates: each variant's updates are M
minutes at its own speed, measured first by a probe of the real loop (``--probe`` updates after
three warm-up ones, in a scratch folder), so the schedule (cosine over the run) still decays fully.
``--threads`` and ``--bf16`` are the loop's, as in ``train.faces68``.

The attribute head is not ablated here: 300-W carries no attributes, and MTFL's attributes come with
a 5-point layout (issue 15 measures the attribute head on MTFL). Every run is resumable (a finished
variant is skipped), so the command can be re-run after an interruption; results go to
``--docs/ablations_faces68.md`` and ``.json``. The data are 300-W's: research and non-commercial use.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from realtime.core.atomic import write_text_atomic
from realtime.core.cliargs import Parser, number
from realtime.core.errors import UserError, run_command
from realtime.core.outpaths import Output, check_outputs
from train.data.datasets import open_dataset
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import FitConfig
from train.engine.export import export
from train.engine.loop_bench import timed_updates
from train.engine.speed import LoopSettings
from train.engine.runs import hardware, run_or_resume
from train.recipes.faces68_recipe import (
    add_recipe_arguments,
    recipe,
    recipe_inputs,
    set_nme,
    write_report,
)

VARIANTS = ("recipe", "no_teacher", "elt", "width1", "softargmax", "ce_softargmax", "rgb", "lr_high", "lr_low",
            "machine_labels")
WHAT = {"recipe": "the recipe, from --init",
        "no_teacher": "random init (no teacher faces)",
        "elt": "recipe + ELT on every image (weight {elt_weight})",
        "width1": "width 1.0 (64 channels), random init",
        "softargmax": "2018 soft-argmax L2 loss instead of cross-entropy",
        "ce_softargmax": "cross-entropy + {softargmax_weight:g} x soft-argmax L2",
        "rgb": "RGB input (first conv from the grey --init by luma weights)",
        "lr_high": "peak learning rate x2 ({lr:g})",
        "lr_low": "peak learning rate x0.5 ({lr:g})",
        "machine_labels": "+ MTFL faces with dlib's 68 points (machine labels)"}


def variant(name: str, base: FitConfig, elt_weight: float, machine_labels: str | None = None) -> FitConfig:
    """``base`` with the one change that names the variant (module docstring)."""
    out = str(Path(base.out) / name)
    lr = base.resolved_lr()
    changes = {
        "recipe": {},
        "no_teacher": {"init": None},
        "elt": {"elt_weight": elt_weight},
        "width1": {"init": None, "width_mult": 1.0},
        "softargmax": {"loss": "softargmax"},
        "ce_softargmax": {"loss": "ce+softargmax"},
        "rgb": {"rgb": True},
        "lr_high": {"lr": 2 * lr},
        "lr_low": {"lr": lr / 2},
        "machine_labels": {"data": f"{base.data} + folder:{machine_labels}?layout=ibug68"},
    }
    if name not in changes:
        raise UserError(f"unknown variant {name!r}: choose from {', '.join(VARIANTS)}")
    if name == "machine_labels" and not machine_labels:
        raise UserError("the machine_labels variant needs --machine-labels DIR (python -m train.tools.make_teacher_labels)")
    return replace(base, out=out, **changes[name])


def probe_rate(cfg: FitConfig, loop: LoopSettings, device: str, updates: int) -> float:
    """Updates a second of ``cfg``'s real training loop on this machine (``loop_bench.timed_updates``)."""
    return timed_updates(cfg, loop, updates, device=device)["faces_per_s"] / cfg.batch_size


def equal_time(cfg: FitConfig, minutes: float, loop: LoopSettings, device: str, updates: int) -> tuple[FitConfig, float]:
    """``cfg`` with the updates that fill ``minutes`` at its probed speed (kept in the run's
    folder, so a resumed ablation keeps its schedule), and that speed."""
    record = Path(cfg.out) / "probe.json"
    if record.is_file():
        rate = json.loads(record.read_text())["updates_per_s"]
    else:
        rate = probe_rate(cfg, loop, device, updates)
        record.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(record, json.dumps({"updates_per_s": rate, "minutes": minutes}) + "\n")
    steps = max(1, round(minutes * 60 * rate))
    return replace(cfg, steps=steps, eval_every=steps), rate


def score(cfg: FitConfig) -> dict:
    """Hold-out NME of the run's last checkpoint (exported beside it), and the run's training time."""

    last = Path(cfg.out) / "last.pt"
    weights = Path(cfg.out) / "last.safetensors"
    if not weights.is_file() or weights.stat().st_mtime < last.stat().st_mtime:
        export(last, weights)
    seconds = load_checkpoint(last)["state"].get("seconds")
    return {"heldout": set_nme(weights, open_dataset(cfg.val)), "train_seconds": seconds, "steps": cfg.steps,
            "fit_config": asdict(cfg)}


def render(numbers: dict) -> str:
    """The report (Markdown) of ``numbers``, the ablation's JSON."""
    results, minutes = numbers["results"], numbers.get("minutes")
    first = next(iter(results.values()))["fit_config"] if results else {}
    budget = (f"{minutes:g} minutes of training each (equal CPU time: each variant's updates are that many minutes at "
              "its own probed speed, so its cosine schedule decays fully)" if minutes else
              f"{numbers['steps']} updates each (cosine decay over those updates)")
    lines = [
        "# Ablations of the 68-point recipe (300-W, short budget)", "",
        f"Generated by `{numbers['command']}`; hardware: {numbers['hardware']}. Every variant: {budget}, batch "
        f"{first.get('batch_size', 32)}, Adam from {first.get('lr', 5e-4):g} with a cosine decay, heavy augmentation, rotation "
        f"{first.get('rotation', 30)}, mirror {first.get('mirror', 0.5)}, the 2016 cross-entropy, starting from "
        f"`{first.get('init')}` unless the row says otherwise; trained on `300w:DATA:train?part=fit` (DATA: the "
        "300-W folder, docs/data.md), scored from its last checkpoint on the photo-grouped hold-out `?part=val` "
        "(121 faces, never trained on) with soft-argmax. NME in % of the outer-eye-corner distance (eye centres in "
        "brackets). These are short runs on a 2-core CPU: they rank the choices at this budget and say nothing "
        "sure about long schedules; on 121 faces, differences under about 0.05 points are noise.", "",
        "| variant | change | NME outer eyes (eye centres) | median | > 8% | > 10% | updates | train min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        o, e = r["heldout"]["outer_eye"], r["heldout"]["eye_centres"]
        minutes_run = f"{r['train_seconds'] / 60:.0f}" if r.get("train_seconds") else "n/a"
        change = WHAT[name].format(**{k: v for k, v in r["fit_config"].items() if v is not None})
        lines.append(f"| `{name}` | {change} | {o['mean_pct']:.2f} ({e['mean_pct']:.2f}) | {o['median_pct']:.2f} | "
                     f"{o['failure@0.08_pct']:.1f} | {o['failure@0.10_pct']:.1f} | {r.get('steps', 'n/a')} | "
                     f"{minutes_run} |")
    lines += ["", "Not ablated: the attribute head (300-W has no attributes; MTFL's come with 5 points).", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.faces68_ablate", description=__doc__.split("\n\n")[0])
    add_recipe_arguments(p, "runs/faces68_ablate", 400, "where ablations_faces68.md/.json go")
    p.add_argument("--elt-weight", type=number(float, 0, lo_open=True), default=5000.0, help="weight of the ELT term in the 'elt' variant (> 0); the ELT term is in squared crop fractions and the 2016 cross-entropy sums over points, so 5000 makes ELT about a tenth of the loss at the start")
    p.add_argument("--variants", default="recipe,no_teacher,elt,width1", help="comma-separated subset of " + ", ".join(VARIANTS))
    p.add_argument("--minutes", type=number(float, 0, lo_open=True), help="equal CPU time: train each variant this "
                   "many minutes at its own probed speed (replaces --steps)")
    p.add_argument("--probe", type=number(int, 1), default=30, help="updates timed to measure a variant's speed (--minutes)")
    p.add_argument("--machine-labels", help="folder of teacher-labelled faces for the machine_labels variant "
                   "(python -m train.tools.make_teacher_labels)")
    p.add_argument("--threads", type=number(int, 1), help="torch threads for training (default: one per core)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast, as train.faces68 --bf16")
    p.add_argument("--lr", type=number(float, 0, lo_open=True), help="peak learning rate (default: the recipe's 5e-4)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    init = recipe_inputs(args)
    machine_labels = Path(args.machine_labels) if args.machine_labels else None
    if machine_labels is not None and not machine_labels.is_dir():
        raise UserError(f"--machine-labels folder not found: {machine_labels}")
    check_outputs([Output(args.out, "--out", folder=True), Output(args.docs, "--docs", folder=True)], [init])
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    base = recipe(Path(args.data), Path(args.out), args.steps, init, args.separable)
    base = replace(base, eval_every=max(1, args.steps // 2), bf16=args.bf16, lr=args.lr or base.lr,
                   trunk_separable=args.trunk_separable)
    configs = {name: variant(name, base, args.elt_weight, str(machine_labels) if machine_labels else None)
               for name in names}
    for cfg in configs.values():
        cfg.validate()
    loop = LoopSettings(threads=args.threads)
    results = {}
    for name, cfg in configs.items():
        started = time.perf_counter()
        if args.minutes:
            cfg, rate = equal_time(cfg, args.minutes, loop, args.device, args.probe)
            print(f"[ablate] {name}: {rate:.2f} updates/s -> {cfg.steps} updates in {args.minutes:g} min", flush=True)
        print(f"[ablate] {name}: {cfg.out}", flush=True)
        run_or_resume(cfg, args.device, loop=loop)
        results[name] = score(cfg)
        o = results[name]["heldout"]["outer_eye"]
        print(f"[ablate] {name}: hold-out NME {o['mean_pct']:.2f}% ({time.perf_counter() - started:.0f} s)", flush=True)
    command = " ".join(["python -m train.faces68_ablate", *args.argv])
    machine = hardware() + (", bf16 autocast" if args.bf16 else "")
    numbers = {"command": command, "hardware": machine, "steps": args.steps, "minutes": args.minutes, "results": results}
    write_report(Path(args.docs), "ablations_faces68" + ("_equal_time" if args.minutes else ""), numbers, render(numbers))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
