"""``python -m train.reproduce semisup2018``: the 2018 paper's grid (synthetic benchmark or real faces).

Labelled fraction {1%, 5%, 100%} x {L, L+A, L+ELT, L+ELT+A}: L is the landmark loss on the S
landmark-labelled images alone; A adds sequential multitasking (the attribute head on the
predicted landmarks, trained on every image's ``cls`` and ``orientation``); ELT adds the
equivariance loss on all N images. Every run has the same model, budget of updates, batch size
per pool, seed and label subsets (``--subset-seed``), so the variants differ only in their loss.
Runs resume or are skipped when finished; the report (markdown table, PNG plot of error against
labelled fraction, attribute accuracy of the runs with an attribute head, commands, seeds, hardware
and wall time) goes to ``docs/<report>`` (``results_2018.md`` by default).

The loss weights can be chosen by a small validation sweep first (``--sweep-attribute-weights``,
``--sweep-elt-weights``): L+ELT+A at one labelled fraction for every pair, for ``--sweep-steps``
updates each; the pair with the lowest validation NME (never the test set) is used by the grid.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from realtime.core.atomic import write_text_atomic
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import FitConfig
from train.engine.runlog import save_figure

FRACTIONS = (0.01, 0.05, 1.0)
VARIANTS = ("L", "L+A", "L+ELT", "L+ELT+A")


@dataclass(frozen=True)
class GridSettings:
    """What the command line sets: budget, loss weights, data and where things go."""

    out: Path
    docs: Path
    steps: int
    batch_size: int
    attribute_weight: float
    elt_weight: float
    preset: str
    loss: str
    train: str
    val: str
    test: str
    eval_every: int
    fractions: tuple[float, ...] = FRACTIONS
    variants: tuple[str, ...] = VARIANTS
    bf16: bool = False
    device: str = "cpu"
    report: str = "results_2018.md"
    sweep_attribute: tuple[float, ...] = ()
    sweep_elt: tuple[float, ...] = ()
    sweep_steps: int = 300
    sweep_fraction: float = 0.05

    @property
    def synthetic(self) -> bool:
        return self.train.startswith("synth")

    @property
    def plot_name(self) -> str:
        return "semisup_grid.png" if self.report == "results_2018.md" else Path(self.report).stem + "_grid.png"


def variant_weights(variant: str, settings: GridSettings) -> tuple[float, float]:
    """(attribute weight, ELT weight) of a variant."""
    return (settings.attribute_weight if "A" in variant.split("+") else 0.0,
            settings.elt_weight if "ELT" in variant else 0.0)


def run_name(fraction: float, variant: str) -> str:
    return f"f{fraction:g}_{variant.replace('+', '-')}"


def base_config(settings: GridSettings) -> FitConfig:
    """What every run of the grid and of the sweep shares."""
    return FitConfig(preset=settings.preset, data=settings.train, val=settings.val, out="", loss=settings.loss,
                     optimizer="adam", lr=1e-3, batch_size=settings.batch_size, steps=settings.steps,
                     eval_every=settings.eval_every, bf16=settings.bf16, attribute_fraction=1.0, subset_seed=0)


def sweep_grid(settings: GridSettings) -> list[tuple[float, float, FitConfig]]:
    """(attribute weight, ELT weight, config) of the validation sweep: L+ELT+A at the sweep's
    labelled fraction, every pair of weights, ``sweep_steps`` updates each."""
    base = replace(base_config(settings), steps=settings.sweep_steps, landmark_fraction=settings.sweep_fraction,
                   eval_every=min(settings.eval_every, settings.sweep_steps))
    return [(a, e, replace(base, attribute_weight=a, elt_weight=e,
                           out=str(settings.out / "sweep" / f"f{settings.sweep_fraction:g}_a{a:g}_e{e:g}")))
            for a in settings.sweep_attribute for e in settings.sweep_elt]


def best_val(cfg: FitConfig) -> float:
    """The run's best validation NME (what early stopping kept)."""

    return float(load_checkpoint(Path(cfg.out) / "last.pt")["state"]["best"])


def run_sweep(settings: GridSettings, run_or_resume, command_line) -> tuple[GridSettings, list[str], list[str]]:
    """Run the sweep (resuming), pick the weights with the lowest validation NME; returns the
    settings with those weights, the report's sweep section and the sweep's commands."""
    runs = sweep_grid(settings)
    if not runs:
        return settings, [], []
    rows, commands, scores = [], [], {}
    for a, e, cfg in runs:
        print(f"[semisup2018 sweep] attribute {a:g}, ELT {e:g} -> {cfg.out}", flush=True)
        run_or_resume(cfg, settings.device)
        scores[(a, e)] = best_val(cfg)
        commands.append(command_line(cfg))
    a, e = min(scores, key=scores.get)
    rows = ["| attribute weight | ELT weight | best validation NME |", "|---|---|---|"]
    rows += [f"| {wa:g} | {we:g} | {100 * v:.2f}%{' (chosen)' if (wa, we) == (a, e) else ''} |"
             for (wa, we), v in scores.items()]
    section = ["## Loss weights: validation sweep", "",
               f"L+ELT+A at {100 * settings.sweep_fraction:g}% landmark labels, {settings.sweep_steps} updates per pair, "
               "scored on the validation split (the test set is not looked at); the grid uses the chosen pair.", "",
               *rows, ""]
    return replace(settings, attribute_weight=a, elt_weight=e), section, commands


def grid(settings: GridSettings) -> list[tuple[float, str, FitConfig]]:
    base = base_config(settings)
    runs = []
    for fraction in settings.fractions:
        for variant in settings.variants:
            attribute_weight, elt_weight = variant_weights(variant, settings)
            cfg = replace(base, landmark_fraction=fraction, attribute_weight=attribute_weight, elt_weight=elt_weight,
                          out=str(settings.out / run_name(fraction, variant)))
            runs.append((fraction, variant, cfg))
    return runs


def finished(cfg: FitConfig) -> bool:
    last = Path(cfg.out) / "last.pt"
    return last.is_file() and load_checkpoint(last)["step"] >= cfg.steps


def plot(results: dict[tuple[float, str], dict], fractions: tuple[float, ...], path: Path, title: str,
         variants: tuple[str, ...] = VARIANTS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    markers = dict(zip(VARIANTS, "osD^"))  # a variant keeps its marker when others are left out
    for variant in variants:
        marker = markers[variant]
        done = [f for f in fractions if (f, variant) in results]
        ys = [100 * results[(f, variant)]["softargmax"]["mean"] for f in done]
        ax.plot([100 * f for f in done], ys, marker=marker, label=variant)
    ax.set(xscale="log", xlabel="images with landmark labels (%)",
           ylabel="test NME (%, eye centres, soft-argmax)", title=title)
    ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g}%" for f in fractions])
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    save_figure(fig, path)


def table(results: dict[tuple[float, str], dict], fractions: tuple[float, ...], variants: tuple[str, ...] = VARIANTS) -> str:
    head = "| variant | " + " | ".join(f"{100 * f:g}% labels" for f in fractions) + " |"
    lines = [head, "|---|" + "---|" * len(fractions)]
    for variant in variants:
        cells = []
        for f in fractions:
            r = results.get((f, variant))
            if r is None:
                cells.append("not run yet")
                continue
            cells.append(f"{100 * r['softargmax']['mean']:.2f}% ({100 * r['argmax']['mean']:.2f}%)")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def attribute_table_md(results: dict[tuple[float, str], dict], fractions: tuple[float, ...],
                       variants: tuple[str, ...] = VARIANTS) -> list[str]:
    """Test accuracy of each attribute for the runs with an attribute head, with the majority-class
    floor of the test set; empty when no run has one."""
    names = sorted({n for r in results.values() for n in r.get("attributes", {})})
    if not names:
        return []
    floor = next(r["attributes"] for r in results.values() if r.get("attributes"))
    lines = ["| labels | variant | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names),
             "| - | majority class | " + " | ".join(f"{100 * floor[n]['majority']:.1f}%" if n in floor else "-" for n in names) + " |"]
    for f in fractions:
        for variant in variants:
            attrs = results.get((f, variant), {}).get("attributes")
            if attrs:
                lines.append(f"| {100 * f:g}% | {variant} | " + " | ".join(
                    f"{100 * attrs[n]['accuracy']:.1f}%" if n in attrs else "-" for n in names) + " |")
    return ["## Attribute accuracy (test set)", "",
            "The attribute head classifies each test face from its predicted (soft-argmax) landmarks; the "
            "majority-class row is the accuracy of always answering the test set's most common class.", "",
            *lines, ""]


def target_lines(results: dict[tuple[float, str], dict], fractions: tuple[float, ...]) -> list[str]:
    """The targets: at 1% and at 5% labels L+ELT+A <= 0.8 x L at the same fraction, and at 5%
    within 1.3 x L at 100%."""
    err = lambda f, v: results[(f, v)]["softargmax"]["mean"]  # noqa: E731
    lines = []
    for f in (0.01, 0.05):
        if (f, "L") in results and (f, "L+ELT+A") in results:
            ratio = err(f, "L+ELT+A") / err(f, "L")
            lines.append(f"- L+ELT+A at {100 * f:g}% / L at {100 * f:g}%: **{ratio:.2f}x** (target <= 0.8x: "
                         f"{'met' if ratio <= 0.8 else 'not met'})")
    if (1.0, "L") in results and (0.05, "L+ELT+A") in results:
        ratio = err(0.05, "L+ELT+A") / err(1.0, "L")
        lines.append(f"- L+ELT+A at 5% / L at 100%: **{ratio:.2f}x** (target <= 1.3x: {'met' if ratio <= 1.3 else 'not met'})")
    if (1.0, "L") in results and (0.01, "L") in results:
        lines.append(f"- L at 1% / L at 100%: {err(0.01, 'L') / err(1.0, 'L'):.2f}x (the schedule is long enough "
                     "for the label count to matter when this is well above 1)")
    return lines or ["- Checking the targets (L+ELT+A against L at 1% and 5%, and against L at 100%) needs runs that are not finished yet."]


def run_grid(settings: GridSettings, run_or_resume, evaluate_run, command_line, hardware, train: bool = True) -> str:
    """Run the weight sweep if asked, then train/resume every run (only report the finished ones
    when ``train`` is False), evaluate each on the test split, write the report and plot."""
    t0 = time.monotonic()
    sweep_section, sweep_commands = [], []
    if train:
        settings, sweep_section, sweep_commands = run_sweep(settings, run_or_resume, command_line)
    results, rows, commands = {}, [], []
    for fraction, variant, cfg in grid(settings):
        commands.append(command_line(cfg))
        if not train and not finished(cfg):
            print(f"[semisup2018] {variant} at {100 * fraction:g}%: not finished, left out", flush=True)
            continue
        print(f"[semisup2018] {variant} at {100 * fraction:g}% -> {cfg.out}", flush=True)
        run_or_resume(cfg, settings.device)
        res = evaluate_run(cfg, settings.test)
        results[(fraction, variant)] = res
        rows.append((fraction, variant, res))
    where = "the synthetic benchmark" if settings.synthetic else "real faces"
    plot(results, settings.fractions, settings.docs / settings.plot_name, f"semi-supervised training, {where}",
         settings.variants)
    total = sum(r["seconds"] for _, _, r in rows)
    per_run = ["| labels | variant | test NME, soft-argmax | argmax | failure@10% | AUC@10% | best step | wall time |",
               "|---|---|---|---|---|---|---|---|"]
    for fraction, variant, r in rows:
        s = r["softargmax"]
        per_run.append(f"| {100 * fraction:g}% | {variant} | {100 * s['mean']:.2f}% | {100 * r['argmax']['mean']:.2f}% | "
                       f"{100 * s['failure@0.1']:.1f}% | {100 * s['auc@0.1']:.1f}% | {r.get('best_step')} | "
                       f"{r['seconds'] / 60:.1f} min |")
    command = (f"python -m train.reproduce semisup2018 --out {settings.out.parent} --docs {settings.docs} "
               f"--steps {settings.steps} --batch-size {settings.batch_size} --eval-every {settings.eval_every} --attribute-weight {settings.attribute_weight:g} "
               f"--elt-weight {settings.elt_weight:g} --preset {settings.preset} --loss {settings.loss}")
    if not settings.synthetic:
        command += (f" --train '{settings.train}' --val '{settings.val}' --test '{settings.test}' --report {settings.report}"
                    f" --fractions {','.join(f'{f:g}' for f in settings.fractions)}")
    if settings.variants != VARIANTS:
        command += f" --variants {','.join(settings.variants)}"
    attributes = ("attribute labels (`cls`, `orientation`) on every training image" if settings.synthetic else
                  "the data's attribute labels (MTFL: gender, smile, glasses, 5-way head pose) on every training image")
    report = [
        f"# The 2018 semi-supervised grid, measured on {where}", "",
        f"Generated by `{command}`" + (" (after the weight sweep below, which chose the weights)." if sweep_section else "."), "",
        f"Hardware: {hardware()}, device `{settings.device}`. Data: train `{settings.train}`, validation `{settings.val}`, "
        f"test `{settings.test}`. Every run: preset `{settings.preset}`, landmark loss `{settings.loss}`, Adam lr 1e-3, "
        f"{'bf16 autocast' if settings.bf16 else 'fp32'}, "
        f"{settings.steps} updates of batch {settings.batch_size} per active pool, seed 54621, label subsets from "
        f"subset seed 0 (nested: the 1% set is inside the 5% set); {attributes}; attribute weight "
        f"{settings.attribute_weight:g}, ELT weight {settings.elt_weight:g} when on. Test NME is normalised by the "
        "inter-ocular (eye-centre) distance, mean over the test images, soft-argmax decoder (argmax in brackets). "
        "Validation (for early stopping) uses the labelled validation split.",
        "",
        f"Total training time: {total / 60:.1f} min (report written after {(time.monotonic() - t0) / 60:.1f} min "
        "including runs that were already finished).", "",
        table(results, settings.fractions, settings.variants), "",
        *target_lines(results, settings.fractions), "",
        f"![test NME against labelled fraction]({settings.plot_name})", "",
        *attribute_table_md(results, settings.fractions, settings.variants),
        *sweep_section,
        "## Every run", "", *per_run, "",
        "## Commands", "", "```bash", *sweep_commands, *commands, "```", "",
    ]
    text = "\n".join(report)
    write_text_atomic(settings.docs / settings.report, text)
    return text
