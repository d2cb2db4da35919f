"""``python -m train.faces68``: the bundled 68-point model, from human-annotated faces to shipped weights.

``--report-only`` re-measures an existing ``--ship`` file without training. The recipe (its
stages, the training configuration, the export and the model card's numbers):
``train/recipes/faces68_recipe.py``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from realtime.core.atomic import atomic_path
from realtime.core.cliargs import Parser, number
from realtime.core.measure import machine
from realtime.core.errors import UserError, run_command
from realtime.core.outpaths import Output, check_outputs
from train.data.datasets import open_dataset
from train.engine.export import export
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import changed_settings, counts_arg
from train.engine.progress import append_row
from train.engine.runs import command_line, run_or_resume, saved_progress
from train.engine.speed import LoopSettings
from train.recipes.faces68_recipe import (
    DEFAULT_SHIP,
    add_recipe_arguments,
    measure,
    recipe,
    recipe_inputs,
    render,
    set_nme,
    ship,
    specs,
    write_golden,
    write_report,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.faces68", description=__doc__.split("\n\n")[0])
    add_recipe_arguments(p, "runs/faces68_sep", 2500, "where results_faces68.md/.json go",
                         init="assets/rcn68_dense.safetensors", separable=2)
    p.add_argument("--ship", default=str(DEFAULT_SHIP), help="where the exported weights go")
    p.add_argument("--level-widths", type=counts_arg, help="channels per level, finest first (default: the "
                   "recipe's 32 at every level); an --init of this architecture with wider levels keeps its strongest "
                   "channels "
                   "(a faster student of the bundled model: docs/bench/speed.md)")
    p.add_argument("--distil-from", help="also learn the maps of this trained network (.safetensors; e.g. the full-width "
                   "model for a --level-widths student)")
    p.add_argument("--distil-data", help="a dataset spec of faces learned only through --distil-from's maps (their "
                   "labels only frame the crop), a batch of them beside each labelled one: e.g. "
                   "'mtfl:DIR:train', MTFL's 10,000 faces with 5 points (the MTFL folder, docs/data.md)")
    p.add_argument("--extra-data", help="a dataset spec of more labelled faces joined to 300-W's training part (the "
                   "hold-out, the model card's training NME, the pose head and the re-detect threshold stay 300-W's): "
                   "e.g. 'folder:DIR', a teacher's labels of MTFL made by python -m train.tools.make_pseudo_labels")
    p.add_argument("--lr", type=number(float, 0, lo_open=True), help="the cosine schedule's first learning rate "
                   "(default: the recipe's 5e-4); lower for a new run started from trained weights")
    p.add_argument("--report-only", action="store_true", help="measure --ship as it is: no training")
    p.add_argument("--eval-every", type=number(int, 1), default=250, help="updates between hold-out checks and checkpoints")
    p.add_argument("--minutes", type=number(float, 1), help="train one chunk of at most this long, save, add a row "
                   "to --progress and stop; the same command continues the run (a long schedule over several sessions). "
                   "Ctrl-C or SIGTERM ends a chunk early: the finished updates are saved and get their row")
    p.add_argument("--threads", type=number(int, 1), help="torch threads for training (default: one per core); 1 keeps "
                   "a run steady beside other work, whose preemptions stall every multi-threaded op")
    p.add_argument("--workers", type=number(int, 0), default=1, help="data-preparation processes (0: in series)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the forward and backward passes (fp32 "
                   "weights and optimiser): about 2x the updates a second on a CPU with AVX512-BF16 or AMX "
                   "(docs/training_speed.md); a run may switch on resume")
    p.add_argument("--progress", default="docs/training_progress.md", help="the chunks' progress table (with --minutes)")
    p.add_argument("--ship-now", action="store_true", help="no training: export and measure the run's last checkpoint "
                   "as it stands, its schedule unfinished (a long run's model so far; its card gives the updates done)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    init = recipe_inputs(args)

    # --ship-now trains nothing, so --init is not read and may be the file it replaces (a long run started
    # from the bundled model ships over it)
    check_outputs([Output(args.out, "--out", folder=True), Output(args.ship, "--ship", (".safetensors",)),
                   Output(args.docs, "--docs", folder=True)], [] if args.ship_now else [init])
    cfg = recipe(Path(args.data), Path(args.out), args.steps, init, args.separable, args.eval_every)
    cfg = replace(cfg, bf16=args.bf16, level_widths=args.level_widths, trunk_separable=args.trunk_separable,
                  distil_from=args.distil_from, distil_data=args.distil_data, lr=args.lr or cfg.lr,
                  data=cfg.data + (f" + {args.extra_data}" if args.extra_data else ""))
    cfg.validate()
    if args.report_only or args.ship_now:
        check_same_run(cfg, "--report-only" if args.report_only else "--ship-now")
    if args.report_only:
        if not Path(args.ship).is_file():
            raise UserError(f"--report-only needs the weights: {args.ship} not found")
    elif args.ship_now:
        if not (Path(args.out) / "last.pt").is_file():
            raise UserError(f"--ship-now needs a run's checkpoint: {Path(args.out) / 'last.pt'} not found")
        cfg = keep_init(cfg, Path(args.ship))
        ship_run(args, cfg)
    else:
        loop = LoopSettings(threads=args.threads, workers=args.workers)
        start = saved_progress(cfg.out)
        try:
            summary = run_or_resume(cfg, args.device, args.minutes, loop, start=start)  # one read of last.pt less
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the loop saved the updates it finished
            if args.minutes is not None:
                _report_stopped_chunk(args, cfg, start)
            raise
        if args.minutes is not None:
            chunk_report(args, cfg, summary)
        if summary["step"] < cfg.steps:
            print(f"[faces68] chunk done at update {summary['step']:,} of {cfg.steps:,}; the same command continues "
                  f"the run from {cfg.out}/last.pt", flush=True)
            return 0
        ship_run(args, cfg)
    results = measure(args, cfg)
    command = " ".join(["python -m train.faces68", *args.argv])
    write_report(Path(args.docs), "results_faces68", results, render(results, command, command_line(cfg)))
    return 0


def ship_run(args: argparse.Namespace, cfg) -> None:
    """Export the run's last checkpoint to ``--ship`` (with the golden points when it is the bundled file)."""
    ship(Path(args.out), Path(args.ship), specs(Path(args.data))[0], cfg.val, args.extra_data)
    if Path(args.ship).resolve() == DEFAULT_SHIP:
        write_golden(DEFAULT_SHIP)


def check_same_run(cfg, flag: str) -> None:
    """UserError when the run in ``cfg.out`` was trained with other settings than this command
    line's (``--extra-data``, ``--lr``, ...): its export and report take theirs from here."""
    last = Path(cfg.out) / "last.pt"
    if not last.is_file():
        return
    changed = changed_settings(load_checkpoint(last)["fit_config"], cfg)
    if changed:
        raise UserError(f"the run in {cfg.out} was trained with other settings ({', '.join(changed)}): give {flag} "
                        "the options it was trained with")


def keep_init(cfg, ship_to: Path):
    """``cfg`` measuring its starting point from a copy in the run folder when shipping replaces it."""
    if cfg.init is None or not Path(cfg.init).is_file() or Path(cfg.init).resolve() != ship_to.resolve():
        return cfg
    kept = Path(cfg.out) / "init.safetensors"
    if not kept.is_file():
        with atomic_path(kept) as tmp:
            shutil.copyfile(cfg.init, tmp)
    return replace(cfg, init=str(kept))


def _report_stopped_chunk(args: argparse.Namespace, cfg, start: tuple[int, float]) -> None:
    """A chunk stopped by a signal still gets its progress row, for the updates its checkpoint
    holds (a second signal keeps the previous checkpoint: then the row ends there, or none is
    written when it holds nothing new)."""
    step, seconds = saved_progress(cfg.out)
    if step <= start[0]:
        return
    print(f"[faces68] stopped at update {step:,}; writing the chunk's progress row first", flush=True)
    chunk_report(args, cfg, {"step": step, "start_step": start[0], "seconds": seconds, "start_seconds": start[1]})


def chunk_report(args: argparse.Namespace, cfg, summary: dict) -> None:
    """The chunk's row in the progress table: the hold-out NME of the run's last checkpoint."""
    if summary.get("skipped"):
        return
    with tempfile.TemporaryDirectory(prefix="rcn-chunk-") as tmp:
        weights = Path(tmp) / "last.safetensors"
        export(Path(cfg.out) / "last.pt", weights)
        holdout = set_nme(weights, open_dataset(cfg.val))
    chunk_seconds = summary["seconds"] - summary.get("start_seconds", 0.0)
    row = append_row(Path(args.progress), f"Progress of {cfg.out}: {command_line(cfg)}", summary["start_step"],
                     summary["step"], cfg.steps, chunk_seconds, summary["seconds"], cfg.batch_size, holdout,
                     machine() + (", bf16 autocast" if cfg.bf16 else ""))
    print(f"[faces68] progress: {row}", end="", flush=True)


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
