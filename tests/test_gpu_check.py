"""``tools/gpu_check.py``, the prepared device check: its report from a run's numbers, and its
training probe's parsing, without a GPU (the whole check's CPU dry run is in docs/bench_gpu/cpu_dryrun/)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_check", REPO / "tools" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_the_report_renders_every_step_from_the_dry_runs_numbers():
    report = json.loads((REPO / "docs" / "bench_gpu" / "cpu_dryrun" / "gpu_check.json").read_text())
    text = gpu_check.render(report)
    for step in gpu_check.STEPS[1:]:
        assert f"| {step} |" in text
    assert "faces/s" in text and "fps" in text and "updates/s" in text and "Live mode" in text
    assert "Several streams at once" in text and "Same pipeline on this machine" in text


def test_the_environment_names_the_machine_and_the_optional_packages():
    env = gpu_check.environment("cpu")
    assert env["device"] == "cpu" and set(env["packages"]) == set(gpu_check.OPTIONAL) and "cores" in env["machine"]


def test_a_failing_step_is_recorded_not_fatal(tmp_path):
    import sys

    log: list[str] = []
    status, seconds, tail = gpu_check.run_step("boom", [sys.executable, "-c", "import sys; print('oops'); sys.exit(3)"],
                                               30, log)
    assert status == "failed (exit 3)" and "oops" in tail and "boom" in log[0]
    status, _, _ = gpu_check.run_step("slow", [sys.executable, "-c", "import time; time.sleep(5)"], 1, log)
    assert status.startswith("timed out")
