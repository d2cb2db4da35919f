"""``python -m train.faces68``: the bundled 68-point model, from human-annotated faces to shipped weights.

``--report-only`` re-measures an existing ``--ship`` file without training. The recipe (its
stages, the training configuration, the export and the model card's numbers):
``train/recipes/faces68.py``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realtime.core.cliargs import Parser
from realtime.core.errors import UserError, run_command
from realtime.core.outpaths import Output, check_outputs
from train.engine.runs import command_line, run_or_resume
from train.recipes.faces68 import (
    DEFAULT_SHIP,
    add_recipe_arguments,
    measure,
    recipe,
    recipe_inputs,
    render,
    ship,
    write_golden,
    write_report,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.faces68", description=__doc__.split("\n\n")[0])
    add_recipe_arguments(p, "runs/faces68_sep", 2500, "where results_faces68.md/.json go",
                         init="assets/rcn68_dense.safetensors", separable=2)
    p.add_argument("--ship", default=str(DEFAULT_SHIP), help="where the exported weights go")
    p.add_argument("--report-only", action="store_true", help="measure --ship as it is: no training")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    init = recipe_inputs(args)

    check_outputs([Output(args.out, "--out", folder=True), Output(args.ship, "--ship", (".safetensors",)),
                   Output(args.docs, "--docs", folder=True)], [init])
    cfg = recipe(Path(args.data), Path(args.out), args.steps, init, args.separable)
    cfg.validate()
    if args.report_only:
        if not Path(args.ship).is_file():
            raise UserError(f"--report-only needs the weights: {args.ship} not found")
    else:
        run_or_resume(cfg, args.device)
        ship(Path(args.out), Path(args.ship), cfg.data, cfg.val)
        if Path(args.ship).resolve() == DEFAULT_SHIP:
            write_golden(DEFAULT_SHIP)
    results = measure(args, cfg)
    command = " ".join(["python -m train.faces68", *args.argv])
    write_report(Path(args.docs), "results_faces68", results, render(results, command, command_line(cfg)))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
