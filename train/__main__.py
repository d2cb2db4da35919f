"""``python -m train {fit,evaluate,export,synth,adapt,bench}``: the training recipes' command lines."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path

from realtime.core.assets import LANDMARKS_68
from realtime.core.atomic import write_text_atomic
from realtime.core.measure import machine
from realtime.core.cliargs import Parser, fraction, name_list, number, positive
from realtime.core.errors import UserError, exit_status, require_files
from realtime.core.outpaths import Output, prepare_outputs
from train.data.synthetic import load_synthetic, write_preview
from train.engine.adapt import AdaptConfig, adapt, write_report_json
from train.engine.loop_bench import VARIANTS, bench_loop, render
from train.engine.fit_config import LOSSES, FitConfig, counts_arg
from train.engine.export import export
from train.engine.fit import fit
from train.recipes.faces68_recipe import DEFAULT_SHIP, recipe
from train.evaluation.evaluate import run_evaluate


def _mask(text: str) -> tuple[int, ...]:
    bits = text.replace(",", "")
    if not bits or set(bits) - {"0", "1"}:
        raise argparse.ArgumentTypeError(f"branch mask must be 0/1 digits coarse -> fine, e.g. 1,0,0,1; got {text!r}")
    return tuple(int(b) for b in bits)


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="train a model")
    p.add_argument("--preset", required=True, help="rcn_mtfl, rcn_300w, sumnet_mtfl, sumnet_300w, rcnplus, denoiser")
    p.add_argument("--data", required=True, help="training set spec, e.g. synth:train or 300w:/data/300W:train")
    p.add_argument("--val", help="validation set spec (default: hold out --val-fraction of --data)")
    p.add_argument("--val-fraction", type=number(float, 0, 1, hi_open=True),
                   help="share of --data held out for validation when --val is not given (0: validate on the training set)")
    p.add_argument("--out", required=True, help="run directory (made if missing; an existing run needs --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--loss", choices=list(LOSSES),
                   help="ce: 2016 spatial cross-entropy + trunk/branch L2; softargmax: 2018 coordinate L2; "
                   "ce+softargmax: their sum (--softargmax-weight x the L2)")
    p.add_argument("--optimizer", choices=["adadelta", "adam"],
                   help="adadelta: the 2016 recipe (rho 0.95, no learning rate to tune); adam")
    p.add_argument("--lr", type=number(float, 0, 10, lo_open=True), help="learning rate (default 1.0 for AdaDelta, "
                   "1e-3 for Adam)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"],
                   help="cosine: from --lr down to --lr/100 over the run's updates")
    p.add_argument("--init", help="start from these weights (.safetensors of the same architecture): a fine-tune")
    p.add_argument("--device", default="cpu", help="torch device for the model: cpu, cuda, cuda:N "
                   "(augmentation stays on the CPU; --bf16 autocasts on that device)")
    p.add_argument("--batch-size", type=positive(int), help="images per update")
    p.add_argument("--steps", type=positive(int), help="total updates (default 1000 unless --epochs)")
    p.add_argument("--epochs", type=positive(int), help="total epochs (ceil(N / batch) updates each)")
    p.add_argument("--eval-every", type=positive(int), help="updates between validations")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (AMX on CPU)")
    p.add_argument("--seed", type=number(int, 0), help="seed of data order, augmentation and init")
    for name in ("l2-trunk", "l2-branch", "l2-out"):
        p.add_argument(f"--{name}", type=number(float, 0), help="L2 coefficient (default: the paper's, per preset)")
    p.add_argument("--branches", type=number(int, 2, 7), help="branch count (default 5)")
    p.add_argument("--width-mult", type=number(float, 0, 8, lo_open=True),
                   help="channel multiplier of the preset's widths")
    p.add_argument("--branch-kernel", type=number(int, 1, 15), help="convolution kernel of the branches "
                   "(default: the preset's)")
    p.add_argument("--separable", type=number(int, 0, 7), help="depthwise-separable branch convs at this many "
                   "finest levels (default 0); an --init without them is factorised into them")
    p.add_argument("--trunk-separable", type=number(int, 0, 6), help="depthwise-separable trunk convs at this many "
                   "levels from the second finest down (default 0); factorised from an --init alike")
    p.add_argument("--level-widths", type=counts_arg, help="channels of every conv per level, finest first, e.g. "
                   "16,32,32,32,32 (default: the preset's x --width-mult); an --init with wider levels keeps its "
                   "strongest channels")
    p.add_argument("--distil-from", help="a trained landmark network (.safetensors) whose maps the run also learns "
                   "(KL of each keypoint's spatial softmax, beside the labels' loss)")
    p.add_argument("--distil-weight", type=number(float, 0), help="weight of the distillation terms, on the labelled batch and "
                   "on --distil-data's (default 1)")
    p.add_argument("--distil-data", help="a dataset spec of faces learned only through --distil-from's maps (their "
                   "labels only frame the crop): each update adds a batch of them, e.g. MTFL's 10,000 faces beside "
                   "300-W's 1,086 labelled ones")
    p.add_argument("--rgb", action="store_true", help="colour input (default grey, as the paper)")
    p.add_argument("--upsample", choices=["nearest", "learned"], help="branch upsampling (default: the preset's)")
    p.add_argument("--normalise", choices=["zscore", "lcn", "none"], help="input normalisation (default: the preset's)")
    p.add_argument("--branch-mask", type=_mask, help="train with these branches only, coarse -> fine, e.g. 1,0,0,1")
    p.add_argument("--beta", type=positive(float), help="soft-argmax inverse temperature")
    p.add_argument("--softargmax-weight", type=positive(float),
                   help="with --loss ce+softargmax: the weight of the soft-argmax L2 (squared crop fractions) "
                   "against the cross-entropy (summed over points); default 1e6, about equal parts on a trained model")
    p.add_argument("--decoder", choices=["argmax", "softargmax"], help="decoder stored with the weights "
                   "(default: the preset's)")
    p.add_argument("--augment", choices=["2016", "heavy"],
                   help="2016: the paper's jitter; heavy: + perspective, random occluder fill, colour, "
                        "exposure, blur, noise, JPEG (for small sets)")
    p.add_argument("--rotation", type=number(int, 0, 180), help="max rotation jitter, degrees")
    p.add_argument("--no-occluder", action="store_true", help="heavy augmentation without the random occluder")
    p.add_argument("--mirror", type=fraction(), help="mirror probability (keypoints permuted)")
    p.add_argument("--denoiser-kernel", type=number(int, 1, 199),
                   help="kernel of the 2016 denoiser (preset denoiser only)")
    _add_semi_supervised(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # the defaults are FitConfig's (one source): every flag named as a field takes that field's default
    p.set_defaults(**{f.name: f.default for f in fields(FitConfig) if f.default is not MISSING and f.name != "steps"})


def _add_semi_supervised(p) -> None:
    g = p.add_argument_group("semi-supervised training (2018): label regimes, attribute loss, ELT")
    g.add_argument("--landmark-fraction", type=fraction(),
                   help="fraction of training images whose landmark labels are used (S/N)")
    g.add_argument("--attribute-fraction", type=fraction(),
                   help="fraction whose attribute labels are used (M/N); contains the landmark subset")
    g.add_argument("--subset-seed", type=number(int, 0), help="seed of the labelled subsets (subsets.json)")
    g.add_argument("--attribute-weight", type=number(float, 0),
                   help="weight of the attribute loss through the landmarks (sequential multitasking)")
    g.add_argument("--attr-hidden", type=counts_arg, help="attribute MLP hidden sizes")
    g.add_argument("--attr-dropout", type=number(float, 0, 1, hi_open=True),
                   help="dropout of the attribute MLP")
    g.add_argument("--attr-inputs", choices=["centred", "crop"],
                   help="landmarks centred and scaled (default), or in crop coordinates")
    g.add_argument("--elt-weight", type=number(float, 0), help="weight of the ELT loss on all images")
    g.add_argument("--elt-rotation", type=number(float, 0, 180), help="ELT rotation range, +- degrees")
    g.add_argument("--elt-translate", type=number(float, 0, 0.5), help="ELT shift range, +- fraction of the crop")
    g.add_argument("--elt-zoom", type=number(float, 0, 1, hi_open=True), help="ELT zoom in [1 - z, 1 + z]")
    g.add_argument("--elt-mirror", type=fraction(), help="ELT mirror probability (keypoints permuted)")
    g.add_argument("--elt-target", choices=["detached", "both"],
                   help="detached: T(L(I)) is a fixed target (default); both: gradient through both sides")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="measure NME, failure rate, AUC; CED plot; branch-mask table")
    p.add_argument("weights", nargs="+", help="one or more .safetensors weights files")
    p.add_argument("--data", action="append", required=True, help="test set spec (repeatable)")
    p.add_argument("--norm", default="eye_centres", help="comma list of outer_eye,eye_centres,pupils,box")
    p.add_argument("--decoder", choices=["argmax", "softargmax"], help="default: the model's own")
    p.add_argument("--beta", type=positive(float), help="soft-argmax inverse temperature (default: the model's)")
    p.add_argument("--denoiser", help="joint inference with this denoiser weights file")
    p.add_argument("--ced", help="write the CED plot to this .png (or .pdf, .svg)")
    p.add_argument("--json", help="write all numbers to this .json file")
    p.add_argument("--mask-table", action="store_true", help="print the branch-masking table (talk layout)")
    p.add_argument("--batch-size", type=number(int, 1, 4096), default=64, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="torch device of the models: cpu, cuda, cuda:N")
    p.add_argument("--by", metavar="ATTRIBUTE", help="also one row per value of this attribute of the data "
                   "(MTFL: pose, gender, smile, glasses; pose 0 = left profile ... 4 = right profile)")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="turn a training checkpoint into shipped .safetensors weights")
    p.add_argument("checkpoint", help="a training checkpoint (last.pt or best.pt of a run)")
    p.add_argument("-o", "--out", required=True, help="the weights to write (.safetensors)")


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="generate (and cache) the synthetic benchmark; optional preview PNG")
    p.add_argument("--split", default="train", choices=["train", "val", "test"], help="which split to generate")
    p.add_argument("--n", type=number(int, 1, 1_000_000), help="images (default: the split's size)")
    p.add_argument("--seed", type=number(int, 0), default=0, help="generator seed")
    p.add_argument("--preview", help="write a .png grid of examples with their landmarks")


def _add_adapt(sub) -> None:
    p = sub.add_parser("adapt", help="fine-tune weights on your own unlabelled footage with ELT (drift-guarded)")
    p.add_argument("weights", help="the .safetensors weights to start from")
    p.add_argument("--frames", required=True,
                   help="a video file, a folder of images, or a dataset spec (its crops; labels unused)")
    p.add_argument("-o", "--out", required=True, help="the adapted .safetensors (written atomically)")
    p.add_argument("--check", help="labelled dataset spec: report NME before and after")
    p.add_argument("--labelled", help="labelled dataset spec mixed into every update (guards against drift)")
    d = AdaptConfig()  # the one source of the defaults
    p.add_argument("--labelled-weight", type=number(float, 0), default=d.labelled_weight,
                   help="weight of the labelled loss beside ELT")
    p.add_argument("--anchor-weight", type=number(float, 0), default=d.anchor_weight,
                   help="weight of the relative squared distance from the starting weights (L2-SP)")
    p.add_argument("--steps", type=positive(int), default=d.steps, help="updates")
    p.add_argument("--batch-size", type=positive(int), default=d.batch_size, help="crops per update")
    p.add_argument("--lr", type=number(float, 0, 1, lo_open=True), default=d.lr, help="Adam learning rate")
    p.add_argument("--max-crops", type=number(int, 2), default=d.max_crops, help="at most this many face crops")
    p.add_argument("--stride", type=positive(int), default=d.stride, help="use every STRIDE-th frame")
    p.add_argument("--detector", choices=["short", "full"], default=d.detector, help="BlazeFace model that finds the faces")
    p.add_argument("--seed", type=number(int, 0), default=d.seed, help="seed of the batches and transforms")
    p.add_argument("--elt-rotation", type=number(float, 0, 180), default=d.elt_rotation,
                   help="ELT: largest in-plane turn of the transforms (degrees)")
    p.add_argument("--elt-translate", type=number(float, 0, 1), default=d.elt_translate,
                   help="ELT: largest shift of the transforms (fraction of the crop)")
    p.add_argument("--elt-zoom", type=number(float, 0, 1), default=d.elt_zoom,
                   help="ELT: largest zoom of the transforms (fraction)")
    p.add_argument("--json", help="write the before/after report to this .json file")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT.resume.pt")
    p.add_argument("--device", default="cpu", help="torch device of the model and its updates: cpu, cuda, cuda:N "
                   "(the face crops are cut on the CPU once)")


def _cmd_adapt(args) -> None:
    require_files(("weights", args.weights))
    prepare_outputs([Output(args.out, "-o", (".safetensors",)), Output(args.json, "--json", (".json",))],
                    [args.weights, args.frames])
    cfg = AdaptConfig(**{f.name: getattr(args, f.name) for f in fields(AdaptConfig)})
    report = adapt(args.weights, args.frames, args.out, cfg, check=args.check, resume=args.resume, device=args.device)
    if args.json:
        write_report_json(report, args.json)




def _cmd_fit(args) -> None:
    if args.steps and args.epochs:
        raise UserError("give --steps or --epochs, not both")
    values = {f.name: getattr(args, f.name) for f in fields(FitConfig) if hasattr(args, f.name)}
    values["occluder"] = not args.no_occluder
    if values["steps"] is None:  # FitConfig's default (1000) unless --epochs decides
        del values["steps"]
    cfg = FitConfig(**values)
    summary = fit(cfg, resume=args.resume, progress=not args.quiet, device=args.device)
    print(f"done: {summary['step']} updates in {summary['seconds']:.0f} s; best validation NME "
          f"{100 * summary['best_val_nme']:.2f}% at update {summary['best_step']}; weights {args.out}/best.safetensors")


def _cmd_evaluate(args) -> None:
    norms = [n.strip() for n in args.norm.split(",") if n.strip()]
    require_files(*(("weights", w) for w in args.weights), ("--denoiser", args.denoiser))
    prepare_outputs([Output(args.ced, "--ced", (".png", ".pdf", ".svg")), Output(args.json, "--json", (".json",))],
                    [*args.weights, args.denoiser])
    print(run_evaluate(args.weights, args.data, norms, args.decoder, args.beta, args.denoiser,
                       args.ced, args.json, args.mask_table, args.batch_size, args.device, args.by))


def _cmd_export(args) -> None:
    require_files(("checkpoint", args.checkpoint))
    prepare_outputs([Output(args.out, "-o", (".safetensors",))], [args.checkpoint])
    print(export(args.checkpoint, args.out))


def _cmd_synth(args) -> None:
    prepare_outputs([Output(args.preview, "--preview", (".png",))])
    t0 = time.monotonic()
    data = load_synthetic(args.split, args.n, args.seed)
    print(f"synthetic {args.split}: {len(data)} images ready in {time.monotonic() - t0:.1f} s")
    if args.preview:
        write_preview(args.preview, n=16, seed=args.seed)
        print(f"preview written to {args.preview}")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="faces/s of the training loop under several loop settings, and its split")
    p.add_argument("--preset", default="faces68", choices=["faces68"],
                   help="the recipe whose loop is measured (faces68: train.faces68's network, data and --init)")
    p.add_argument("--data", default="../shared/data/300w", help="the 300-W folder (docs/data.md)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma list of " + ", ".join(VARIANTS) + " (the first is the ratios' baseline)")
    p.add_argument("--rounds", type=number(int, 1), default=3)
    p.add_argument("--updates", type=number(int, 1), default=20, help="timed updates per variant and round")
    p.add_argument("--report", help="also write the Markdown report here")


def _cmd_bench(args) -> None:
    variants = name_list("--variants", args.variants, list(VARIANTS), "variant")
    prepare_outputs([Output(args.report, "--report", (".md",))])
    if not Path(args.data).is_dir():
        raise UserError(f"300-W folder not found: {args.data} (give --data)")
    cfg = recipe(Path(args.data), Path("unused"), 1, init=DEFAULT_SHIP, separable=2)
    results = bench_loop(cfg, variants, args.rounds, args.updates)
    text = render(results, f"Training loop speed: {args.preset}, batch {cfg.batch_size}, {machine()}")
    text += (f"\nCommand: `python -m train bench --variants {','.join(variants)} --rounds {args.rounds} "
             f"--updates {args.updates}`\n")
    print(text)
    if args.report:
        write_text_atomic(args.report, text)


def build_parser() -> Parser:
    parser = Parser(prog="python -m train", description=__doc__, version_weights=LANDMARKS_68)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (_add_fit, _add_evaluate, _add_export, _add_synth, _add_adapt, _add_bench):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    commands = {"fit": _cmd_fit, "evaluate": _cmd_evaluate, "export": _cmd_export, "synth": _cmd_synth, "adapt": _cmd_adapt,
                "bench": _cmd_bench}
    kept = {"fit": "the last consistent checkpoint is saved: run the same command with --resume to continue",
            "adapt": "progress so far is saved: run the same command with --resume to continue"}
    chosen: list[str] = []

    def parse_and_run() -> int:
        args = build_parser().parse_args(argv)
        chosen.append(args.command)
        commands[args.command](args)
        return 0

    return exit_status(parse_and_run, lambda: kept.get(chosen[0] if chosen else "", "nothing was written"))


if __name__ == "__main__":
    sys.exit(main())
