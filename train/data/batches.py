"""The training batches of a plain (fully labelled) run, drawn by update number, in series or
prepared ahead by worker processes.

Update ``u`` of a run takes batch ``u mod B`` of epoch ``u // B`` (``B`` full batches an epoch, the
order a permutation seeded by (seed, epoch): ``batch_order``), and every item's jitter is seeded by
(seed, epoch, index) (``LandmarkDataset``), so the batches depend only on the update number: a run
resumed at any update, with or without workers, sees what an uninterrupted run sees.

With ``workers`` > 0 a ``torch.utils.data.DataLoader`` prepares batches in worker processes while the
main process computes (two batches ahead per worker). The workers are spawned, not forked: a fork
copies whatever locks the parent's thread pools (OpenMP, OpenCV) held at that moment, and a forked
worker hung on one in the test suite. The workers ignore Ctrl-C: the main process
owns the stop signals (``train.engine.loop``) and shuts the workers down when it stops.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator

import cv2
import torch
from torch.utils.data import DataLoader, Sampler

from train.data.loader import LandmarkDataset


def batch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The epoch's batches: a permutation seeded by (seed, epoch), full batches only."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    if n < batch_size:
        return [perm]
    return [perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def collate(items: list[dict]) -> dict:
    """Stack a list of ``LandmarkDataset`` items into one batch dict."""
    return {key: torch.stack([it[key] for it in items]) if torch.is_tensor(items[0][key])
            else torch.tensor([it[key] for it in items]) for key in items[0]}


class UpdateSampler(Sampler):
    """Batches of (epoch, index) pairs for updates ``step``, ``step + 1``, ... (endless)."""

    def __init__(self, n: int, batch_size: int, seed: int, step: int) -> None:
        self.n, self.batch_size, self.seed, self.step = n, batch_size, seed, step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per_epoch = len(batch_order(self.n, self.batch_size, self.seed, 0))
        epoch, first = divmod(self.step, per_epoch)
        while True:
            for idx in batch_order(self.n, self.batch_size, self.seed, epoch)[first:]:
                yield [(epoch, int(i)) for i in idx]
            epoch, first = epoch + 1, 0


class _EpochItems(torch.utils.data.Dataset):
    """``LandmarkDataset`` addressed by (epoch, index): the epoch travels with the index, so worker
    processes need no ``set_epoch``."""

    def __init__(self, dataset: LandmarkDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        return {**self.dataset.item(index, epoch), "epoch": epoch}


def _quiet_worker(_: int) -> None:
    """A worker: one thread for OpenCV and torch (the main process computes on the cores), Ctrl-C ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


@contextlib.contextmanager
def update_batches(dataset: LandmarkDataset, batch_size: int, seed: int, step: int,
                   workers: int = 0) -> Iterator[Iterator[tuple[int, dict]]]:
    """An endless iterator of (epoch, batch) for updates ``step`` on; workers are shut down on exit."""
    sampler = UpdateSampler(len(dataset), batch_size, seed, step)
    items = _EpochItems(dataset)
    if workers <= 0:
        yield (_collate_keyed([items[k] for k in keys]) for keys in sampler)
        return
    loader = DataLoader(items, batch_sampler=sampler, num_workers=workers, collate_fn=_collate_keyed,
                        worker_init_fn=_quiet_worker, prefetch_factor=2, persistent_workers=False,
                        multiprocessing_context="spawn")
    iterator = iter(loader)
    try:
        yield iterator
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)  # what DataLoader's own __del__ calls
        if shutdown is not None:
            shutdown()


def _collate_keyed(items: list[dict]) -> tuple[int, dict]:
    """Worker-side collate: the batch and its epoch (carried by every item as ``epoch``)."""
    epoch = int(items[0].pop("epoch"))
    for it in items[1:]:
        it.pop("epoch")
    return epoch, collate(items)
