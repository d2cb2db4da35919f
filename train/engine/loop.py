"""The one training loop: updates, the stop signals, and the checkpoint written when they stop it.

``train fit`` (every recipe) and ``train adapt`` both run ``run_updates``: draw a batch, set the
learning rate, compute the loss, refuse a non-finite one, step the optimiser, report the update.
Ctrl-C, SIGTERM and SIGHUP (``StopRequest``) ask the loop to stop after the update in flight;
``save(step)`` then writes a consistent checkpoint (``train.engine.checkpoint``'s format, the same for
both) and the interrupt is re-raised for the command line (exit 128 + the signal). A second signal
stops at once and the previous checkpoint stays. Resuming is the caller's: it restores the model,
optimiser and step from that checkpoint and draws batches by update number, so a resumed run
continues exactly as if it had never stopped.
"""
from __future__ import annotations

import contextlib
import signal
import time
from typing import Any, Callable, Iterator

import torch

from realtime.core.errors import UserError
from realtime.core.signals import Stopped, handling


class StopRequest:
    """While active (main thread only), the first Ctrl-C, SIGTERM or SIGHUP asks the loop to stop
    after the update in flight; a second one raises at once. ``interrupt()`` raises the
    ``KeyboardInterrupt`` (a ``realtime.core.signals.Stopped`` for SIGTERM/SIGHUP) that carries the
    signal to the command line. A signal the process started with ignored stays ignored."""

    def __init__(self) -> None:
        self.requested = False
        self.signum = int(signal.SIGINT)

    def handle(self, signum, frame) -> None:
        """The signal handler (installed by ``run_updates`` through ``realtime.core.signals.handling``)."""
        if self.requested:
            self.interrupt()
        self.requested = True
        self.signum = signum

    def interrupt(self) -> None:
        raise KeyboardInterrupt if self.signum == signal.SIGINT else Stopped(self.signum)



def run_updates(step: int, end: int, batches: Iterator[tuple[int, Any]], loss_fn: Callable[[Any], torch.Tensor],
                optimizer: torch.optim.Optimizer, after_update: Callable[[int, int, torch.Tensor], None],
                save: Callable[[int], None], lr_at: Callable[[int], float] | None = None,
                until: float | None = None, timer=None) -> int:
    """Updates ``step`` .. ``end - 1``; returns the step reached. ``batches`` yields (epoch, batch)
    for update ``step`` on; ``after_update(step, epoch, loss)`` runs after each (logging,
    evaluation, periodic checkpoints); on a stop signal ``save(step)`` writes the checkpoint of the
    finished updates and the interrupt is re-raised (module docstring). ``until`` (a
    ``time.monotonic()`` deadline) ends the loop quietly after the update in flight: a chunk of a
    long run (the caller saves). ``timer`` (``train.engine.speed.StepTimer``) splits each update's
    time into data, forward, backward and optimiser."""
    stop = StopRequest()
    phase = timer.phase if timer is not None else (lambda name: contextlib.nullcontext())
    with handling(stop.handle):
        while step < end and not stop.requested and (until is None or time.monotonic() < until):
            with phase("data"):
                epoch, batch = next(batches)
            if lr_at is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
            with phase("forward"):
                loss = loss_fn(batch)
            if not torch.isfinite(loss):
                raise UserError(f"training diverged at update {step} (loss {loss.item()}); lower the learning rate")
            with phase("backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with phase("optimiser"):
                optimizer.step()
            if timer is not None:
                timer.update_done()
            step += 1
            after_update(step, epoch, loss)
    if stop.requested:  # the update in flight finished: the state is consistent
        save(step)
        stop.interrupt()
    return step
