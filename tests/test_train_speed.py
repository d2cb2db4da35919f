"""The training loop at the machine's limit: batches prepared by workers equal the serial ones,
channels_last changes the speed, not the run; chunks stop on time and resume exactly, also from a
checkpoint committed to git and cloned; the bench and the progress table."""
import csv
import subprocess
import time
from pathlib import Path

import pytest
import torch

from train.data.batches import update_batches
from train.data.datasets import open_dataset
from train.data.loader import LandmarkDataset
from train.data.augment import AugmentConfig
from train.engine.loop_bench import bench_loop, render
from train.engine.checkpoint import load_checkpoint
from train.engine.fit import fit
from train.engine.loop import run_updates
from train.engine.progress import append_row
from train.engine.speed import LoopSettings, StepTimer

from test_fit import _cache, _cfg  # noqa: F401  (the short synthetic run and its cache folder)


def _same_weights(a: Path, b: Path) -> None:
    ca, cb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert ca["step"] == cb["step"]
    for key, value in ca["model"].items():
        assert torch.equal(value, cb["model"][key]), key


def test_worker_batches_equal_the_serial_ones_from_any_update():
    data = LandmarkDataset(open_dataset("synth:train?n=24&seed=3"), aug=AugmentConfig(), seed=5)
    with update_batches(data, 8, seed=5, step=2, workers=0) as serial, \
            update_batches(data, 8, seed=5, step=2, workers=1) as prepared:
        for _ in range(4):  # crosses an epoch boundary (3 batches an epoch)
            (e0, b0), (e1, b1) = next(serial), next(prepared)
            assert e0 == e1
            for key in b0:
                assert torch.equal(b0[key], b1[key]), key


def test_loop_settings_change_the_speed_not_the_run(tmp_path):
    """The same first batch and weights give the same loss (NHWC convolutions sum in another order:
    equal to float rounding; Adam's later steps amplify such rounding, so the weights are not compared)."""
    for name, loop in (("a", LoopSettings.today()), ("b", LoopSettings(channels_last=True, workers=1))):
        fit(_cfg(tmp_path / name, steps=1, eval_every=1), progress=False, loop=loop)
    losses = [float(next(csv.DictReader((tmp_path / n / "log.csv").open()))["train_loss"]) for n in "ab"]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_a_deadline_ends_the_loop_after_the_update_in_flight():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = iter(lambda: (0, torch.ones(4, 2)), None)
    done = []
    loss = lambda x: model(x).pow(2).mean()  # noqa: E731
    assert run_updates(0, 10, batches, loss, opt, lambda s, e, l: done.append(s), print, until=time.monotonic() - 1) == 0
    timer = StepTimer(skip=1)
    assert run_updates(0, 5, batches, loss, opt, lambda s, e, l: done.append(s), print,
                       until=time.monotonic() + 60, timer=timer) == 5
    assert done == [1, 2, 3, 4, 5] and timer.updates == 4
    assert set(timer.summary(4)["ms"]) == {"data", "forward", "backward", "optimiser"}


def test_a_chunk_resumed_from_a_committed_checkpoint_in_a_fresh_clone_equals_one_run(tmp_path):
    """The long run's working periods: a chunk ends, its run folder is committed, a fresh clone on
    another machine continues it; the weights equal those of one uninterrupted run."""
    fit(_cfg(tmp_path / "whole"), progress=False)
    repo = tmp_path / "repo"
    fit(_cfg(repo / "checkpoints" / "run"), stop_after=4, progress=False)
    git = lambda *args, cwd=repo: subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", "checkpoints")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "chunk 1")
    git("clone", "-q", str(repo), str(tmp_path / "clone"), cwd=tmp_path)
    resumed = tmp_path / "clone" / "checkpoints" / "run"
    assert load_checkpoint(resumed / "last.pt")["step"] == 4
    fit(_cfg(resumed), resume=True, progress=False)
    _same_weights(tmp_path / "whole", resumed)


def test_the_bench_reports_each_variant_per_round(tmp_path):
    results = bench_loop(_cfg(tmp_path / "unused"), ["today", "fast"], rounds=2, updates=2, warmup=1)
    assert all(len(rounds) == 2 and rounds[0]["updates"] == 2 for rounds in results.values())
    text = render(results, "t")
    assert "| today |" in text and "| fast |" in text and "1.00x, 1.00x" in text
    assert not (tmp_path / "unused").exists()


def test_the_progress_table_gets_one_row_per_chunk(tmp_path):
    nme = {"outer_eye": {"mean_pct": 5.0, "failure@0.10_pct": 1.0}, "eye_centres": {"mean_pct": 7.0}}
    path = tmp_path / "progress.md"
    append_row(path, "run", 0, 100, 1000, 3600, 3600, 32, nme, "m")
    row = append_row(path, "run", 100, 250, 1000, 1800, 5400, 32, nme, "m")
    assert row.startswith("| 2 |") and "100 -> 250 of 1,000" in row and "0.50 / 1.50" in row and "8,000" in row
    assert path.read_text().count("\n| ") == 3  # header + two rows
