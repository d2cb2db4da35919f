"""``python -m train.tools.make_synthetic_preview``: the synthetic benchmark's tools (a preview sheet, a timing run).
The benchmark itself is ``train.data.synthetic``."""
from __future__ import annotations

import argparse
import time

import numpy as np

from realtime.core.cliargs import Parser, number
from realtime.core.errors import run_command
from realtime.core.outpaths import Output, prepare_outputs
from train.data.synthetic import generate, write_preview


def main(argv: list[str] | None = None) -> int:
    def parse(argv: list[str] | None) -> argparse.Namespace:
        parser = Parser(prog="python -m train.tools.make_synthetic_preview", description="synthetic benchmark tools")
        parser.add_argument("--preview", metavar="PNG", help="write a .png grid of examples with their landmarks")
        parser.add_argument("--n", type=number(int, 1, 100_000), default=16, help="images in the preview or the timing run")
        parser.add_argument("--seed", type=number(int, 0), default=0, help="generator seed")
        parser.add_argument("--time", action="store_true", help="time generate(n) without caching")
        return parser.parse_args(argv)

    def run(args: argparse.Namespace) -> int:
        prepare_outputs([Output(args.preview, "--preview", (".png",))])
        if args.preview:
            print(f"preview written to {write_preview(args.preview, args.n, args.seed)}")
        if args.time:
            t0 = time.perf_counter()
            arrays = generate(args.n, args.seed)
            seconds = time.perf_counter() - t0
            per_class = np.bincount(arrays.cls, minlength=3)
            print(f"{len(arrays)} images in {seconds:.2f} s; images per class {per_class}")
        return 0

    return run_command(parse, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
