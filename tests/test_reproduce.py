"""The reproduction commands end to end on tiny data: every run trains, resumes/skips, and the
report and plot are written (the numbers themselves are meaningless at this size)."""
import json

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
