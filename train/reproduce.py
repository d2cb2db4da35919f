"""``python -m train.reproduce rcn2016``: the 2016 paper's claims, measured on the synthetic benchmark.

Runs (or resumes, or skips when finished) a grid of training runs, evaluates each on the test
split, and writes a markdown report with the commands, seeds, hardware and wall time of every
number, plus PNG plots. Two experiments:

- ``compare``: RCN against SumNet (5 branches, the MTFL presets) at an equal budget of updates;
  final test error, and updates needed to reach a validation-error threshold.
- ``masks``: the branch-masking table of the authors' talk (4-branch models, each mask trained
  and evaluated with only its branches), RCN and SumNet.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from realtime.backends.base import native_bf16
from realtime.core.atomic import write_text_atomic
from realtime.core.cliargs import Parser, Range, name_list, number, number_list
from realtime.core.errors import UserError, run_command
from realtime.models.model import build_model
from realtime.models.presets import make_config
from realtime.models.weights import load_attribute_head, load_model
from train.data.datasets import open_dataset
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import FitConfig
from train.engine.runlog import save_figure
from train.engine.runs import command_line, hardware, run_or_resume  # noqa: F401  (command_line: re-exported)
from train.evaluation.evaluate import attribute_accuracy, evaluate_model
from train.recipes.reproduce_semisup import VARIANTS, GridSettings, finished, run_grid

# The table of the authors' talk on the 2016 paper: mask -> (SumNet AFLW, SumNet AFW, RCN AFLW, RCN AFW).
TALK_MASKS = {
    "1,0,0,0": (10.54, 10.63, 10.61, 10.89), "0,1,0,0": (11.28, 11.43, 11.56, 11.87),
    "1,1,0,0": (9.47, 9.65, 9.31, 9.44), "0,0,1,0": (16.14, 16.35, 15.78, 15.91),
    "0,0,0,1": (45.39, 47.97, 46.87, 48.61), "0,0,1,1": (13.90, 14.14, 12.67, 13.53),
    "0,1,1,1": (7.91, 8.22, 7.62, 7.95), "1,0,0,1": (6.91, 7.51, 6.79, 7.27),
    "1,1,1,1": (6.44, 6.78, 6.37, 6.43),
}


EVAL_VERSION = 2  # 2: attribute accuracy of runs with an attribute head


def evaluate_run(cfg: FitConfig, test_spec: str) -> dict:
    """Test NME (eye-centre normaliser) with both decoders; cached in the run directory, one file
    per test set (``test-<digest of the spec>.json``). The cache holds the run's step: a run
    extended since (the same command with more updates) is scored again."""
    cache = Path(cfg.out) / f"test-{hashlib.sha1(test_spec.encode()).hexdigest()[:10]}.json"
    weights = Path(cfg.out) / "best.safetensors"
    ckpt = load_checkpoint(Path(cfg.out) / "last.pt")
    if cache.is_file():
        cached = json.loads(cache.read_text())
        # a version-1 file lacks only the attribute accuracy, which a run without a head has none of
        current = cached.get("version", 1) == EVAL_VERSION or load_attribute_head(weights) is None
        # files written before the step was recorded: trust them only when the best step matches
        same_run = cached.get("step", ckpt["step"]) == ckpt["step"] and cached.get("best_step") == ckpt["state"].get("best_step")
        if cached.get("test") == test_spec and current and same_run:
            return cached
    model = load_model(weights)
    data = open_dataset(test_spec)
    out = {"test": test_spec, "version": EVAL_VERSION}
    for decoder in ("argmax", "softargmax"):
        report = evaluate_model(model, data, ["eye_centres"], decoder=decoder)
        summary = report.groups["all"]["eye_centres"]
        out[decoder] = {k: summary[k] for k in ("mean", "median", "failure@0.1", "auc@0.1")}
    head = load_attribute_head(Path(cfg.out) / "best.safetensors")
    if head is not None:
        out["attributes"] = attribute_accuracy(model, head, data)
    out["step"] = ckpt["step"]
    out["seconds"] = ckpt["state"].get("seconds", 0.0)
    out["best_step"] = ckpt["state"].get("best_step")
    write_text_atomic(cache, json.dumps(out, indent=2))
    return out


def val_curve(run: Path) -> list[tuple[int, float]]:
    with (run / "log.csv").open() as f:
        return [(int(r["step"]), float(r["val_nme"])) for r in csv.DictReader(f) if r["val_nme"]]


def updates_to_reach(curve: list[tuple[int, float]], threshold: float) -> int | None:
    return next((step for step, err in curve if err <= threshold), None)


def compare_grid(root: Path, base: FitConfig, steps: int, batch_size: int) -> list[FitConfig]:
    return [replace(base, preset=p, out=str(root / "compare" / p), steps=steps, batch_size=batch_size) for p in ("rcn_mtfl", "sumnet_mtfl")]


def mask_grid(root: Path, base: FitConfig, steps: int, batch_size: int) -> list[FitConfig]:
    grid = []
    for arch in ("sumnet", "rcn"):
        for mask in TALK_MASKS:
            bits = tuple(int(b) for b in mask.split(","))
            name = f"{arch}_{mask.replace(',', '')}"
            grid.append(replace(base, preset=f"{arch}_mtfl", branches=4, branch_mask=bits,
                                out=str(root / "masks" / name), steps=steps, batch_size=batch_size))
    return grid


def plot_curves(runs: dict[str, Path], path: Path, threshold: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, run in runs.items():
        steps, errs = zip(*val_curve(run))
        ax.plot(steps, 100 * np.array(errs), marker="o", ms=2, label=label)
    if threshold is not None:
        ax.axhline(100 * threshold, color="grey", ls="--", lw=1, label=f"threshold {100 * threshold:.2f}%")
    ax.set(xlabel="updates", ylabel="validation NME (%, eye centres)", yscale="log", title="RCN vs SumNet, equal budget")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    save_figure(fig, path)


def compare_section(grid: list[FitConfig], results: list[dict], docs: Path, plot_name: str = "rcn_vs_sumnet.png") -> str:
    runs = {cfg.preset: Path(cfg.out) for cfg in grid}
    curves = {name: val_curve(run) for name, run in runs.items()}
    # threshold: 10% above the worse model's best validation error, so both can reach it
    threshold = 1.1 * max(min(e for _, e in c) for c in curves.values())
    plot_curves(runs, docs / plot_name, threshold)

    lines = [
        "| model | parameters | updates | wall time | best val NME | test NME, argmax | test NME, soft-argmax "
        f"| failure@10% | AUC@10% | updates to reach val NME <= {100 * threshold:.2f}% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cfg, res in zip(grid, results):
        n = sum(p.numel() for p in build_model(make_config(cfg.preset)).parameters())
        best = min(e for _, e in curves[cfg.preset])
        reach = updates_to_reach(curves[cfg.preset], threshold)
        am, sm = res["argmax"], res["softargmax"]
        lines.append(f"| {cfg.preset} | {n:,} | {cfg.steps} | {res['seconds'] / 60:.1f} min | {100 * best:.2f}% | "
                     f"{100 * am['mean']:.2f}% | {100 * sm['mean']:.2f}% | {100 * sm['failure@0.1']:.1f}% | "
                     f"{100 * sm['auc@0.1']:.1f}% | {reach if reach is not None else 'not reached'} |")
    return "\n".join(lines)


def talk_columns(test_spec: str) -> tuple[int, int, str]:
    """Which of the talk's columns a test set is compared with: (SumNet index, RCN index, name).
    AFW specs (``...subset=afw...``, ``afw`` in the path) take the AFW columns, every other set
    (MTFL's AFLW test, the synthetic benchmark) the AFLW ones."""
    return (1, 3, "AFW") if "afw" in test_spec.lower() else (0, 2, "AFLW")


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation of two orderings (ties get their mean rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def mask_section(grid: list[FitConfig], results: list[dict | None], test_spec: str = "synth:test") -> str:
    """The talk's branch-masking table in its own layout (one row per mask, coarse -> fine), our
    argmax and soft-argmax NME beside the published column for this test set, then per
    architecture the Spearman rank correlation of our ordering of the masks with the published
    one and whether the full model is the best. A run not finished yet (``--report-only``) shows
    as such, and the correlation is then over the masks that are."""
    ours = {}
    for cfg, res in zip(grid, results):
        if res is not None:
            ours[(",".join(map(str, cfg.branch_mask)), cfg.preset.split("_")[0])] = res
    si, ri, name = talk_columns(test_spec)
    lines = [f"| mask (coarse -> fine) | SumNet (ours) | RCN (ours) | SumNet, soft-argmax | RCN, soft-argmax | "
             f"SumNet {name} (talk) | RCN {name} (talk) |",
             "|---|---|---|---|---|---|---|"]

    def cell(mask: str, arch: str, decoder: str) -> str:
        res = ours.get((mask, arch))
        return f"{100 * res[decoder]['mean']:.2f}" if res else "not run yet"

    for mask, talk in TALK_MASKS.items():
        lines.append(f"| {mask} | {cell(mask, 'sumnet', 'argmax')} | {cell(mask, 'rcn', 'argmax')} | "
                     f"{cell(mask, 'sumnet', 'softargmax')} | {cell(mask, 'rcn', 'softargmax')} | {talk[si]:.2f} | {talk[ri]:.2f} |")
    lines.append("")
    for arch, label, column in (("sumnet", "SumNet", si), ("rcn", "RCN", ri)):
        done = [mask for mask in TALK_MASKS if (mask, arch) in ours]
        if len(done) < 3:
            lines.append(f"- {label}: {len(done)} of {len(TALK_MASKS)} masks finished; no rank correlation yet.")
            continue
        published = [TALK_MASKS[mask][column] for mask in done]
        mine = [ours[(mask, arch)]["argmax"]["mean"] for mask in done]
        best = min(done, key=lambda m: ours[(m, arch)]["argmax"]["mean"])
        rho = spearman(mine, published)
        over = "" if len(done) == len(TALK_MASKS) else f" over the {len(done)} finished masks"
        lines.append(f"- {label}: Spearman rank correlation with the talk's {name} column **{rho:.2f}**{over} "
                     f"(target >= 0.8: {'met' if rho >= 0.8 else 'not met'}); best mask {best} "
                     f"({'the full model' if best == '1,1,1,1' else 'not the full model'}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda a: _parse(a, Parser, number), _run, argv)


def _parse(argv: list[str] | None, Parser, number) -> argparse.Namespace:
    p = Parser(prog="python -m train.reproduce", description=__doc__)
    p.add_argument("experiment", choices=["rcn2016", "semisup2018"], help="which paper's experiments to run")
    p.add_argument("--out", default="runs", help="the runs go to OUT/EXPERIMENT/")
    p.add_argument("--docs", default="docs", help="where the report and plots go")
    p.add_argument("--parts", default="compare,masks", help="rcn2016: comma list of compare,masks")
    p.add_argument("--compare-steps", type=number(int, 1), default=3000, help="rcn2016: updates of each compare run")
    p.add_argument("--mask-steps", type=number(int, 1), default=1200, help="rcn2016: updates of each mask run")
    p.add_argument("--batch-size", type=number(int, 1, 4096), default=64, help="batch size of the compare runs")
    p.add_argument("--mask-batch-size", type=number(int, 1, 4096), default=32, help="batch size of the 18 mask runs")
    p.add_argument("--eval-every", type=number(int, 1), default=100, help="updates between validations")
    p.add_argument("--train", default="synth:train", help="training set spec")
    p.add_argument("--val", default="synth:val", help="validation set spec")
    p.add_argument("--test", action="append", help="test set spec, repeatable (default synth:test); "
                   "rcn2016 reports each, semisup2018 the first")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto", help="bf16 autocast of the runs; auto: "
                   "on where the device computes bf16 natively (AMX/AVX512-BF16 CPUs, CUDA), else off (8x slower "
                   "emulated on an AVX2 CPU)")
    p.add_argument("--device", default="cpu", help="torch device of the runs (cpu, cuda)")
    p.add_argument("--report", default="results_2016.md", help="the report's file name in --docs (semisup2018: "
                   "results_2018.md unless given)")
    g = p.add_argument_group("semisup2018")
    g.add_argument("--steps", type=number(int, 1), default=1500, help="updates per run")
    g.add_argument("--preset", default="rcn_mtfl", help="model preset of the runs")
    g.add_argument("--loss", default="ce", choices=["ce", "softargmax"], help="landmark loss on the labelled pool")
    g.add_argument("--attribute-weight", type=number(float, 0), default=1.0, help="weight of the attribute loss")
    g.add_argument("--elt-weight", type=number(float, 0), default=300.0, help="weight of the ELT loss")
    g.add_argument("--fractions", default="0.01,0.05,1", help="comma list of landmark-labelled fractions")
    g.add_argument("--variants", default=",".join(VARIANTS), help="comma list of the variants to run, of "
                   f"{', '.join(VARIANTS)} (a longer schedule on the cells the targets compare costs less)")
    p.add_argument("--report-only", action="store_true", help="train nothing: report the finished runs (the "
                   "others show as not run yet)")
    g.add_argument("--sweep-attribute-weights", default="", help="semisup2018: comma list of attribute weights "
                   "for the validation sweep (with --sweep-elt-weights); empty: no sweep, use --attribute-weight")
    g.add_argument("--sweep-elt-weights", default="", help="semisup2018: comma list of ELT weights for the sweep")
    g.add_argument("--sweep-steps", type=number(int, 1), default=300, help="semisup2018: updates of each sweep run")
    return p.parse_args(argv)


def resolve_bf16(choice: str, device: str) -> bool:
    """--bf16: on, off, or (auto) on where the device has native bf16 arithmetic."""
    if choice != "auto":
        return choice == "on"
    if device.startswith("cuda"):
        return True

    return bool(native_bf16())


def _run(args) -> int:
    args.test = args.test or ["synth:test"]
    if args.experiment == "semisup2018":
        args.test = args.test[0]
        return _run_semisup(args)
    root, docs = Path(args.out) / "rcn2016", Path(args.docs)
    base = FitConfig(preset="rcn_mtfl", data=args.train, val=args.val, out="", loss="ce", optimizer="adam",
                     lr=1e-3, batch_size=args.batch_size, eval_every=args.eval_every,
                     bf16=resolve_bf16(args.bf16, args.device))
    args.bf16_on = base.bf16
    plot_name = "rcn_vs_sumnet.png" if args.report == "results_2016.md" else Path(args.report).stem + "_curves.png"
    parts = [s.strip() for s in args.parts.split(",")]
    sections, commands, t0 = [], [], time.monotonic()
    plan = (("compare", compare_grid, args.compare_steps, args.batch_size),
            ("masks", mask_grid, args.mask_steps, args.mask_batch_size))
    for part, make, steps, batch_size in plan:
        if part not in parts:
            continue
        grid = make(root, base, steps, batch_size)
        results: dict[str, list[dict | None]] = {test: [] for test in args.test}
        for cfg in grid:
            commands.append(command_line(cfg))
            if args.report_only and not finished(cfg):
                print(f"[{part}] {cfg.out}: not finished, left out", flush=True)
                for test in args.test:
                    results[test].append(None)
                continue
            print(f"[{part}] {cfg.out}", flush=True)
            run_or_resume(cfg, args.device)
            for test in args.test:
                results[test].append(evaluate_run(cfg, test))
        tables = []
        for test, per_run in results.items():
            if part == "masks":
                table = mask_section(grid, per_run, test)
            elif any(r is None for r in per_run):
                table = "Not every run of the comparison is finished yet (--report-only): no table."
            else:
                table = compare_section(grid, per_run, docs, plot_name)
            tables.append(f"Test set `{test}`:\n\n{table}" if len(results) > 1 else table)
        first = next(iter(results.values()))
        sections.append((part, "\n\n".join(tables), sum(r["seconds"] for r in first if r is not None)))
    report = render_report(sections, commands, args, plot_name)
    write_text_atomic(docs / args.report, report)
    print(report)
    print(f"\nwrote {docs / args.report} in {(time.monotonic() - t0) / 60:.1f} min")
    return 0


def _run_semisup(args) -> int:
    fractions = tuple(number_list("--fractions", args.fractions, float, Range(0)))
    sweep_a = tuple(number_list("--sweep-attribute-weights", args.sweep_attribute_weights, float, Range(0), empty=True))
    sweep_e = tuple(number_list("--sweep-elt-weights", args.sweep_elt_weights, float, Range(0), empty=True))
    if bool(sweep_a) != bool(sweep_e):
        raise UserError("the weight sweep needs both --sweep-attribute-weights and --sweep-elt-weights")
    chosen = name_list("--variants", args.variants, VARIANTS, "variant")
    variants = tuple(v for v in VARIANTS if v in chosen)  # the table's order
    settings = GridSettings(out=Path(args.out) / "semisup2018", docs=Path(args.docs), steps=args.steps,
                            batch_size=args.batch_size, attribute_weight=args.attribute_weight,
                            elt_weight=args.elt_weight, preset=args.preset, loss=args.loss, train=args.train,
                            val=args.val, test=args.test, eval_every=args.eval_every, fractions=fractions, variants=variants,
                            bf16=resolve_bf16(args.bf16, args.device), device=args.device,
                            report="results_2018.md" if args.report == "results_2016.md" else args.report,
                            sweep_attribute=sweep_a, sweep_elt=sweep_e, sweep_steps=args.sweep_steps)
    print(run_grid(settings, run_or_resume, evaluate_run, command_line, hardware, train=not args.report_only))
    return 0


PUBLISHED_TABLE_A = ("Published (2016 paper, Table A, eye-centre NME in %, AFLW / AFW): TCDCN 8.0 / 8.2; RCN 5.60 / "
                     "5.36. The paper's AFW is TCDCN's 377 faces with their own 5 points; ours is 300-W's "
                     "re-annotation (337 faces, 5 points derived from the 68: docs/training.md, Datasets).")


def render_report(sections, commands, args, plot_name: str = "rcn_vs_sumnet.png") -> str:
    synthetic = args.train.startswith("synth")
    tests = ", ".join(f"`{t}`" for t in args.test)
    command = " ".join(["python -m train.reproduce", *map(shlex.quote, args.argv)]) if getattr(args, "argv", None) else (
        f"python -m train.reproduce rcn2016 --out {args.out} --docs {args.docs} --parts {args.parts} "
        f"--compare-steps {args.compare_steps} --mask-steps {args.mask_steps} --batch-size {args.batch_size} "
        f"--mask-batch-size {args.mask_batch_size}")
    out = [f"# The 2016 claims, measured on {'the synthetic benchmark' if synthetic else 'real faces'}", "",
           f"Generated by `{command}`.", "",
           f"Hardware: {hardware()}. Data: train `{args.train}`, validation `{args.val}`, test {tests}. "
           f"Every run: seed 54621, Adam lr 1e-3, {'bf16 autocast' if getattr(args, 'bf16_on', True) else 'fp32'}, "
           "spatial cross-entropy + the paper's L2 "
           "(batch %d for the comparison, %d for the mask runs); "
           "test NME normalised by the inter-ocular (eye-centre) distance, in %% (mean over images)." % (args.batch_size, args.mask_batch_size), ""]
    for part, section, seconds in sections:
        title = {"compare": "RCN vs SumNet at equal budget", "masks": "Branch masking (4 branches)"}[part]
        out += [f"## {title}", "", f"Total training time: {seconds / 60:.1f} min.", "", section, ""]
        if part == "compare":
            out += [f"![validation NME against updates]({plot_name})", ""]
            if any(t.startswith("mtfl:") or "subset=afw" in t for t in args.test):
                out += [PUBLISHED_TABLE_A, ""]
    out += ["## Commands", "", "```bash"] + commands + ["```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
