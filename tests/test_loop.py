"""``train.engine.loop``: the one training loop of fit and adapt, on a toy model (no data, no files)."""
from __future__ import annotations

import os
import signal

import pytest
import torch

from realtime.core.errors import UserError
from realtime.core.signals import Stopped
from train.engine.loop import run_updates


def toy(lr: float = 0.1):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    return model, torch.optim.SGD(model.parameters(), lr=lr)


def batches():
    x = torch.ones(4, 2)
    while True:
        yield 0, x


def test_runs_to_the_end_and_reports_every_update():
    model, opt = toy()
    seen, saved = [], []
    step = run_updates(3, 7, batches(), lambda x: model(x).pow(2).mean(), opt,
                       lambda s, e, loss: seen.append(s), saved.append, lr_at=lambda s: 0.01 * (s + 1))
    assert step == 7 and seen == [4, 5, 6, 7] and saved == []
    assert opt.param_groups[0]["lr"] == pytest.approx(0.07)  # set before update 6 (0-based), the last


@pytest.fixture()
def signals_at_default():
    """Python's own handlers for the stop signals while the test runs: CI may run the tests as a
    background job, where SIGINT starts ignored (and the loop keeps an ignored signal ignored)."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


@pytest.mark.parametrize("sig, kind", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Stopped)])
def test_a_stop_signal_finishes_the_update_saves_and_re_raises(sig, kind, signals_at_default):
    model, opt = toy()
    saved, seen = [], []

    def loss_fn(x):
        if len(seen) == 2:  # in the middle of the third update
            os.kill(os.getpid(), sig)
        return model(x).pow(2).mean()

    with pytest.raises(kind) as caught:
        run_updates(0, 100, batches(), loss_fn, opt, lambda s, e, loss: seen.append(s), saved.append)
    assert seen == [1, 2, 3] and saved == [3]  # the third update completed, then the checkpoint
    if kind is Stopped:
        assert caught.value.signum == sig


def test_a_diverging_loss_is_one_line():
    model, opt = toy()
    with pytest.raises(UserError, match="diverged at update 0"):
        run_updates(0, 5, batches(), lambda x: torch.tensor(float("nan"), requires_grad=True), opt,
                    lambda *a: None, lambda s: None)
