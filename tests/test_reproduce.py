"""The reproduction commands end to end on tiny data: every run trains, resumes/skips, and the
report and plot are written (the numbers themselves are meaningless at this size)."""
import json
from pathlib import Path

from realtime.backends.base import native_bf16
from train.reproduce import main


def test_semisup_grid_writes_table_plot_and_commands_and_skips_finished_runs(tmp_path, capsys):
    args = ["semisup2018", "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--steps", "2",
            "--batch-size", "4", "--eval-every", "2", "--fractions", "0.05,1", "--train", "synth:train?n=40&seed=5",
            "--val", "synth:val?n=8&seed=5", "--test", "synth:test?n=8&seed=5"]
    assert main(args) == 0
    report = (tmp_path / "docs" / "results_2018.md").read_text()
    assert (tmp_path / "docs" / "semisup_grid.png").stat().st_size > 1000
    for variant in ("| L |", "| L+A |", "| L+ELT |", "| L+ELT+A |"):
        assert variant in report
    assert "L+ELT+A at 5% / L at 5%" in report and report.count("python -m train fit") == 8
    runs = tmp_path / "runs" / "semisup2018"
    cfg = json.loads((runs / "f0.05_L-ELT-A" / "config.json").read_text())
    assert cfg["landmark_fraction"] == 0.05 and cfg["attribute_weight"] > 0 and cfg["elt_weight"] > 0
    plain = json.loads((runs / "f0.05_L" / "config.json").read_text())
    assert plain["attribute_weight"] == 0 and plain["elt_weight"] == 0
    # the 5% runs share one labelled subset, so the variants differ only in their loss
    subsets = {json.loads((runs / f"f0.05_{v}" / "subsets.json").read_text())["landmark"].__str__() for v in ("L", "L-A", "L-ELT", "L-ELT-A")}
    assert len(subsets) == 1
    mtimes = {p: p.stat().st_mtime_ns for p in runs.glob("*/last.pt")}
    assert main(args) == 0  # finished runs are skipped, not retrained
    assert mtimes == {p: p.stat().st_mtime_ns for p in runs.glob("*/last.pt")}


def test_bad_fraction_list_is_a_one_line_error(tmp_path, capsys):
    assert main(["semisup2018", "--out", str(tmp_path), "--fractions", "a,b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --fractions") and err.count("\n") == 1


def test_report_only_lists_finished_runs_and_trains_nothing(tmp_path):
    base = ["semisup2018", "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--steps", "2",
            "--batch-size", "4", "--eval-every", "2", "--train", "synth:train?n=40&seed=5",
            "--val", "synth:val?n=8&seed=5", "--test", "synth:test?n=8&seed=5"]
    assert main(base + ["--fractions", "1"]) == 0  # the 100% row only
    assert main(base + ["--fractions", "0.05,1", "--report-only"]) == 0
    report = (tmp_path / "docs" / "results_2018.md").read_text()
    assert report.count("not run yet") == 4 and "needs runs that are not finished" in report
    assert not (tmp_path / "runs" / "semisup2018" / "f0.05_L").exists()


def test_mask_table_takes_the_test_sets_column_and_ranks_against_the_talk():
    from train.engine.fit_config import FitConfig
    from train.reproduce import TALK_MASKS, mask_grid, mask_section, talk_columns

    assert talk_columns("300w:x:train?subset=afw&layout=mtfl5")[2] == "AFW"
    assert talk_columns("mtfl:x:test")[2] == "AFLW"
    grid = mask_grid(Path("runs"), FitConfig(preset="rcn_mtfl", data="d", out=""), 10, 4)
    # ours = the talk's AFW numbers, except SumNet with two masks swapped (one transposition of 9)
    results = []
    for cfg in grid:
        mask = ",".join(map(str, cfg.branch_mask))
        arch = cfg.preset.split("_")[0]
        value = TALK_MASKS[mask][1 if arch == "sumnet" else 3]
        if arch == "sumnet" and mask in ("1,0,0,0", "0,1,0,0"):
            value = TALK_MASKS["0,1,0,0" if mask == "1,0,0,0" else "1,0,0,0"][1]
        results.append({"argmax": {"mean": value / 100}, "softargmax": {"mean": value / 100}})
    text = mask_section(grid, results, "300w:x:train?subset=afw")
    assert "SumNet AFW (talk)" in text and "| 1,1,1,1 | 6.78 | 6.43 |" in text
    # Spearman of 9 ranks with one adjacent swap: 1 - 6 * 2 / (9 * 80) = 0.9833
    assert "SumNet: Spearman rank correlation with the talk's AFW column **0.98**" in text
    assert "RCN: Spearman rank correlation with the talk's AFW column **1.00** (target >= 0.8: met); best mask 1,1,1,1 (the full model)" in text
    # runs not finished yet (--report-only): shown as such, the correlation over the finished ones
    partial = [r if cfg.preset == "sumnet_mtfl" or cfg.branch_mask in ((1, 0, 0, 0), (0, 1, 0, 0)) else None
               for cfg, r in zip(grid, results)]
    text = mask_section(grid, partial, "mtfl:x:test")
    assert "not run yet" in text and "SumNet AFLW (talk)" in text
    assert "- RCN: 2 of 9 masks finished; no rank correlation yet." in text


def test_semisup_grid_on_mtfl_fixture_sweeps_weights_and_reports_attribute_accuracy(tmp_path):
    """Real attributes (MTFL's four) through the whole 2018 grid: the validation sweep picks the
    weights the grid then uses, and the runs with an attribute head report accuracy per attribute."""
    fixture = Path(__file__).parent / "fixtures" / "mtfl"
    args = ["semisup2018", "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--steps", "2",
            "--batch-size", "2", "--eval-every", "2", "--fractions", "0.05,1", "--train", f"mtfl:{fixture}:train",
            "--val", f"mtfl:{fixture}:train", "--test", f"mtfl:{fixture}:test", "--report", "results_mtfl2018.md",
            "--sweep-attribute-weights", "0.3,1", "--sweep-elt-weights", "30", "--sweep-steps", "2"]
    assert main(args) == 0
    report = (tmp_path / "docs" / "results_mtfl2018.md").read_text()
    assert report.startswith("# The 2018 semi-supervised grid, measured on real faces")
    assert (tmp_path / "docs" / "results_mtfl2018_grid.png").is_file()
    assert "| labels | variant | gender | glasses | pose | smile |" in report and "| - | majority class |" in report
    sweep = tmp_path / "runs" / "semisup2018" / "sweep"
    assert sorted(p.name for p in sweep.iterdir()) == ["f0.05_a0.3_e30", "f0.05_a1_e30"]
    chosen = 0.3 if "| 0.3 | 30 |" in report.split("(chosen)")[0].splitlines()[-1] else 1.0
    cfg = json.loads((tmp_path / "runs" / "semisup2018" / "f1_L-ELT-A" / "config.json").read_text())
    # --bf16 auto: on where the CPU computes bf16 natively (AVX512-BF16 or AMX hosts), else off
    assert cfg["attribute_weight"] == chosen and cfg["elt_weight"] == 30 and cfg["bf16"] is bool(native_bf16())
    assert main(args) == 0  # resumes: everything finished, the same report


def test_variants_runs_only_the_named_cells_and_reports_their_targets(tmp_path, capsys):
    """--variants L,L+ELT+A: a longer schedule on just the cells the targets compare."""
    args = ["semisup2018", "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--steps", "2",
            "--batch-size", "4", "--eval-every", "2", "--fractions", "0.05,1", "--variants", "L+ELT+A,L",
            "--train", "synth:train?n=40&seed=5", "--val", "synth:val?n=8&seed=5", "--test", "synth:test?n=8&seed=5"]
    assert main(args) == 0
    runs = tmp_path / "runs" / "semisup2018"
    assert sorted(p.name for p in runs.iterdir()) == ["f0.05_L", "f0.05_L-ELT-A", "f1_L", "f1_L-ELT-A"]
    report = (tmp_path / "docs" / "results_2018.md").read_text()
    rows = [line.split("|")[1].strip() for line in report.split("## ")[0].splitlines() if line.startswith("| L")]
    assert rows == ["L", "L+ELT+A"]  # the table's order, nothing "not run yet"
    assert "not run yet" not in report and "L+ELT+A at 5% / L at 5%" in report
    assert "--variants L,L+ELT+A" in report and report.count("python -m train fit") == 4


def test_unknown_variant_is_a_one_line_error(tmp_path, capsys):
    assert main(["semisup2018", "--out", str(tmp_path), "--variants", "L,L+X"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --variants") and err.count("\n") == 1


def test_a_run_extended_by_a_longer_schedule_is_scored_again(tmp_path):
    """The same command with more --steps resumes the run; its cached test score must not be reused."""
    args = ["semisup2018", "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--batch-size", "4",
            "--eval-every", "2", "--fractions", "1", "--variants", "L", "--train", "synth:train?n=40&seed=5",
            "--val", "synth:val?n=8&seed=5", "--test", "synth:test?n=8&seed=5"]
    assert main(args + ["--steps", "2"]) == 0
    run = tmp_path / "runs" / "semisup2018" / "f1_L"
    (cache,) = run.glob("test-*.json")
    assert json.loads(cache.read_text())["step"] == 2
    assert main(args + ["--steps", "4"]) == 0
    scored = json.loads(cache.read_text())
    assert scored["step"] == 4 and scored["best_step"] in (2, 4)
    assert "| 100% | L |" in (tmp_path / "docs" / "results_2018.md").read_text()
