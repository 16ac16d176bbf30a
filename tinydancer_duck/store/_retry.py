"""Commit retries: a LanceDB commit that loses a race with another writer is tried again with a growing pause;
any other failure becomes a StoreError naming what was being written."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tinydancer_duck.errors import StoreError

T = TypeVar("T")

#: Commit attempts for one write before giving up, and the first backoff (doubled each retry, with jitter).
WRITE_ATTEMPTS = 8
WRITE_BACKOFF_S = 0.02
#: Commit conflicts this process retried (LanceDB retries appends and merge_inserts internally first).
conflicts_retried = 0
_RETRYABLE = ("conflict", "retryable", "too many concurrent", "temporarily unavailable")


def retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _RETRYABLE)


def retry(what: str, write: Callable[[], T]) -> T:
    """Run one LanceDB write; retry commit conflicts with exponential backoff; other failures become StoreError."""
    global conflicts_retried
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return write()
        except Exception as exc:
            if attempt + 1 < WRITE_ATTEMPTS and retryable(exc):
                conflicts_retried += 1
                time.sleep(WRITE_BACKOFF_S * 2**attempt * (0.5 + random.random()))
                continue
            raise StoreError(f"{what}: {exc}") from exc
    raise AssertionError("unreachable")
