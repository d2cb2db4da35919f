"""``python -m train {fit,evaluate,export,synth}``: the training recipes' command lines."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from realtime.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line (and exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see '{self.prog} --help')")


def _mask(text: str) -> tuple[int, ...]:
    bits = text.replace(",", "")
    if not bits or set(bits) - {"0", "1"}:
        raise argparse.ArgumentTypeError(f"branch mask must be 0/1 digits coarse -> fine, e.g. 1,0,0,1; got {text!r}")
    return tuple(int(b) for b in bits)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="train a model")
    p.add_argument("--preset", required=True, help="rcn_mtfl, rcn_300w, sumnet_mtfl, sumnet_300w, rcnplus, denoiser")
    p.add_argument("--data", required=True, help="training set spec, e.g. synth:train or 300w:/data/300W:train")
    p.add_argument("--val", help="validation set spec (default: hold out --val-fraction of --data)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--loss", choices=["ce", "softargmax"], default="ce",
                   help="ce: 2016 spatial cross-entropy + trunk/branch L2; softargmax: 2018 coordinate L2")
    p.add_argument("--optimizer", choices=["adadelta", "adam"], default="adadelta")
    p.add_argument("--lr", type=_positive(float), help="default 1.0 (AdaDelta) / 1e-3 (Adam)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                   help="cosine: from --lr down to --lr/100 over the run's updates")
    p.add_argument("--init", help="start from these weights (.safetensors of the same architecture): a fine-tune")
    p.add_argument("--device", default="cpu", help="torch device for the model: cpu, cuda, cuda:N "
                   "(augmentation stays on the CPU; --bf16 autocasts on that device)")
    p.add_argument("--batch-size", type=_positive(int), default=64)
    p.add_argument("--steps", type=_positive(int), help="total updates")
    p.add_argument("--epochs", type=_positive(int), help="total epochs (ceil(N / batch) updates each)")
    p.add_argument("--eval-every", type=_positive(int), default=100, help="updates between validations")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (AMX on CPU)")
    p.add_argument("--seed", type=int, default=54621)
    for name in ("l2-trunk", "l2-branch", "l2-out"):
        p.add_argument(f"--{name}", type=float, help="L2 coefficient (default: the paper's, per preset)")
    p.add_argument("--branches", type=int, help="branch count 2-7 (default 5)")
    p.add_argument("--width-mult", type=_positive(float), default=1.0)
    p.add_argument("--branch-kernel", type=_positive(int))
    p.add_argument("--rgb", action="store_true", help="colour input (default grey, as the paper)")
    p.add_argument("--upsample", choices=["nearest", "learned"])
    p.add_argument("--normalise", choices=["zscore", "lcn", "none"])
    p.add_argument("--branch-mask", type=_mask, help="train with these branches only, coarse -> fine, e.g. 1,0,0,1")
    p.add_argument("--beta", type=_positive(float), default=1.0, help="soft-argmax inverse temperature")
    p.add_argument("--decoder", choices=["argmax", "softargmax"])
    p.add_argument("--augment", choices=["2016", "heavy"], default="2016",
                   help="2016: the paper's jitter; heavy: + perspective, random occluder fill, colour, "
                        "exposure, blur, noise, JPEG (for small sets)")
    p.add_argument("--rotation", type=int, default=40, help="max rotation jitter, degrees")
    p.add_argument("--no-occluder", action="store_true")
    p.add_argument("--mirror", type=float, default=0.0, help="mirror probability (keypoints permuted)")
    p.add_argument("--denoiser-kernel", type=_positive(int), default=45)
    _add_semi_supervised(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1], got {text}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 256,256; got {text!r}")
    return sizes


def _add_semi_supervised(p) -> None:
    g = p.add_argument_group("semi-supervised training (2018): label regimes, attribute loss, ELT")
    g.add_argument("--landmark-fraction", type=_fraction, default=1.0,
                   help="fraction of training images whose landmark labels are used (S/N)")
    g.add_argument("--attribute-fraction", type=_fraction, default=1.0,
                   help="fraction whose attribute labels are used (M/N); contains the landmark subset")
    g.add_argument("--subset-seed", type=int, default=0, help="seed of the labelled subsets (subsets.json)")
    g.add_argument("--attribute-weight", type=float, default=0.0,
                   help="weight of the attribute loss through the landmarks (sequential multitasking)")
    g.add_argument("--attr-hidden", type=_sizes, default=(256, 256), help="attribute MLP hidden sizes")
    g.add_argument("--attr-dropout", type=float, default=0.25)
    g.add_argument("--attr-inputs", choices=["centred", "crop"], default="centred",
                   help="landmarks centred and scaled (default), or in crop coordinates")
    g.add_argument("--elt-weight", type=float, default=0.0, help="weight of the ELT loss on all images")
    g.add_argument("--elt-rotation", type=float, default=20.0, help="ELT rotation range, +- degrees")
    g.add_argument("--elt-translate", type=float, default=0.125, help="ELT shift range, +- fraction of the crop")
    g.add_argument("--elt-zoom", type=float, default=0.2, help="ELT zoom in [1 - z, 1 + z]")
    g.add_argument("--elt-mirror", type=_fraction, default=0.0, help="ELT mirror probability (keypoints permuted)")
    g.add_argument("--elt-target", choices=["detached", "both"], default="detached",
                   help="detached: T(L(I)) is a fixed target (default); both: gradient through both sides")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="measure NME, failure rate, AUC; CED plot; branch-mask table")
    p.add_argument("weights", nargs="+", help="one or more .safetensors weights files")
    p.add_argument("--data", action="append", required=True, help="test set spec (repeatable)")
    p.add_argument("--norm", default="eye_centres", help="comma list of outer_eye,eye_centres,pupils,box")
    p.add_argument("--decoder", choices=["argmax", "softargmax"], help="default: the model's own")
    p.add_argument("--beta", type=_positive(float))
    p.add_argument("--denoiser", help="joint inference with this denoiser weights file")
    p.add_argument("--ced", help="write the CED plot to this PNG")
    p.add_argument("--json", help="write all numbers to this JSON file")
    p.add_argument("--mask-table", action="store_true", help="print the branch-masking table (talk layout)")
    p.add_argument("--batch-size", type=_positive(int), default=64)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="turn a training checkpoint into shipped .safetensors weights")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--out", required=True)


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="generate (and cache) the synthetic benchmark; optional preview PNG")
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--n", type=_positive(int))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preview", help="write a PNG grid of examples with their landmarks")


def _add_adapt(sub) -> None:
    p = sub.add_parser("adapt", help="fine-tune weights on your own unlabelled footage with ELT (drift-guarded)")
    p.add_argument("weights", help="the .safetensors weights to start from")
    p.add_argument("--frames", required=True,
                   help="a video file, a folder of images, or a dataset spec (its crops; labels unused)")
    p.add_argument("-o", "--out", required=True, help="the adapted .safetensors (written atomically)")
    p.add_argument("--check", help="labelled dataset spec: report NME before and after")
    p.add_argument("--labelled", help="labelled dataset spec mixed into every update (guards against drift)")
    p.add_argument("--labelled-weight", type=float, default=1.0)
    p.add_argument("--anchor-weight", type=float, default=100.0,
                   help="weight of the relative squared distance from the starting weights (L2-SP)")
    p.add_argument("--steps", type=_positive(int), default=300)
    p.add_argument("--batch-size", type=_positive(int), default=16)
    p.add_argument("--lr", type=_positive(float), default=1e-4)
    p.add_argument("--max-crops", type=_positive(int), default=2000, help="at most this many face crops")
    p.add_argument("--stride", type=_positive(int), default=1, help="use every STRIDE-th frame")
    p.add_argument("--detector", choices=["short", "full"], default="full")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the before/after report to this JSON file")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT.resume.pt")


def _cmd_adapt(args) -> None:
    from train.adapt import AdaptConfig, adapt, write_report_json

    cfg = AdaptConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, anchor_weight=args.anchor_weight,
                      labelled=args.labelled, labelled_weight=args.labelled_weight, max_crops=args.max_crops,
                      stride=args.stride, detector=args.detector, seed=args.seed)
    report = adapt(args.weights, args.frames, args.out, cfg, check=args.check, resume=args.resume)
    if args.json:
        write_report_json(report, args.json)


SEMI_SUPERVISED_FLAGS = (
    "landmark_fraction", "attribute_fraction", "subset_seed", "attribute_weight", "attr_hidden", "attr_dropout",
    "attr_inputs", "elt_weight", "elt_rotation", "elt_translate", "elt_zoom", "elt_mirror", "elt_target",
)


def _cmd_fit(args) -> None:
    from train.config import FitConfig
    from train.fit import fit

    if args.steps and args.epochs:
        raise UserError("give --steps or --epochs, not both")
    cfg = FitConfig(
        preset=args.preset, data=args.data, val=args.val, val_fraction=args.val_fraction, out=args.out,
        loss=args.loss, optimizer=args.optimizer, lr=args.lr, lr_schedule=args.lr_schedule, init=args.init, batch_size=args.batch_size, steps=args.steps or 1000,
        epochs=args.epochs,
        eval_every=args.eval_every, bf16=args.bf16, seed=args.seed, l2_trunk=args.l2_trunk,
        l2_branch=args.l2_branch, l2_out=args.l2_out, branches=args.branches, width_mult=args.width_mult,
        branch_kernel=args.branch_kernel, rgb=args.rgb, upsample=args.upsample, normalise=args.normalise,
        branch_mask=args.branch_mask, beta=args.beta, decoder=args.decoder, augment=args.augment,
        rotation=args.rotation, occluder=not args.no_occluder, mirror=args.mirror,
        denoiser_kernel=args.denoiser_kernel,
        **{name: getattr(args, name) for name in SEMI_SUPERVISED_FLAGS},
    )
    summary = fit(cfg, resume=args.resume, progress=not args.quiet, device=args.device)
    print(f"done: {summary['step']} updates in {summary['seconds']:.0f} s; best validation NME "
          f"{100 * summary['best_val_nme']:.2f}% at update {summary['best_step']}; weights {args.out}/best.safetensors")


def _cmd_evaluate(args) -> None:
    from train.evaluate import run_evaluate

    norms = [n.strip() for n in args.norm.split(",") if n.strip()]
    print(run_evaluate(args.weights, args.data, norms, args.decoder, args.beta, args.denoiser,
                       args.ced, args.json, args.mask_table, args.batch_size))


def _cmd_export(args) -> None:
    from train.export import export

    print(export(args.checkpoint, args.out))


def _cmd_synth(args) -> None:
    from train.synthetic import load_synthetic, write_preview

    t0 = time.monotonic()
    data = load_synthetic(args.split, args.n, args.seed)
    print(f"synthetic {args.split}: {len(data)} images ready in {time.monotonic() - t0:.1f} s")
    if args.preview:
        write_preview(args.preview, n=16, seed=args.seed)
        print(f"preview written to {args.preview}")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_fit, _add_evaluate, _add_export, _add_synth, _add_adapt):
        add(sub)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parser.parse_args(argv)
        commands = {"fit": _cmd_fit, "evaluate": _cmd_evaluate, "export": _cmd_export, "synth": _cmd_synth, "adapt": _cmd_adapt}
        commands[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; progress so far is saved: run the same command with --resume to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
