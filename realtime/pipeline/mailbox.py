"""The live mode's backpressure: a size-1 mailbox where the newest item wins.

A producer ``put``s without ever blocking; an item not yet taken is overwritten and counted as
dropped (MediaPipe's flow limiter: one item in flight in the consumer, at most one waiting).
A consumer ``get``s, blocking on a ``threading.Condition`` until an item arrives, the timeout
passes or the mailbox is closed. No sleep polling.
"""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class MailboxClosed(Exception):
    """Raised by ``get`` once the mailbox is closed and empty: the producer has finished."""


class LatestMailbox(Generic[T]):
    """Size-1 slot: ``put`` overwrites (counting drops), ``get`` takes the newest item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._dropped = 0
        self._put_count = 0

    def put(self, item: T) -> bool:
        """Store ``item``, replacing any item not yet taken. Returns True when one was dropped.

        Putting into a closed mailbox raises ``MailboxClosed``.
        """
        with self._cond:
            if self._closed:
                raise MailboxClosed("put on a closed mailbox")
            dropped = self._full
            if dropped:
                self._dropped += 1
            self._item, self._full = item, True
            self._put_count += 1
            self._cond.notify()
            return dropped

    def get(self, timeout_s: float | None = None) -> T | None:
        """Take the newest item, waiting up to ``timeout_s`` seconds (None: forever).

        Returns None when the timeout passes with nothing to take. Raises ``MailboxClosed`` when
        the mailbox is closed and empty (an item put before ``close`` is still delivered).
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout=timeout_s):
                return None
            if not self._full:
                raise MailboxClosed("mailbox closed")
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Mark the end of input and wake every waiting ``get``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def dropped(self) -> int:
        """Items overwritten before anyone took them."""
        with self._cond:
            return self._dropped

    @property
    def put_count(self) -> int:
        """Items ever put (taken + dropped + at most one waiting)."""
        with self._cond:
            return self._put_count
