"""Commit retries: a LanceDB commit that loses a race with another writer is tried again with a growing pause;
any other failure becomes a StoreError naming what was being written."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
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


def foreign_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure inside LanceDB: any Exception, or a Rust panic (pyo3's PanicException derives
    from BaseException, so ``except Exception`` would let it through to the user raw)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def first_line(exc: BaseException) -> str:
    """The first line of a foreign error's text, or its type's name; a Rust panic named as one."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if type(exc).__name__ in ("PanicException", "RustPanic") or "panicked" in line:
        return f"LanceDB failed inside (a Rust panic: {line[:120]}); a damaged file is the usual cause"
    return line


@contextlib.contextmanager
def translated(what: str, hint: str = "") -> Iterator[None]:
    """Around a LanceDB call: a failure inside it (a Rust panic too) becomes ``StoreError(f"{what}: {reason}{hint}")``;
    our own StoreErrors pass through."""
    try:
        yield
    except StoreError:
        raise
    except BaseException as exc:
        if not foreign_failure(exc):
            raise
        raise StoreError(f"{what}: {first_line(exc)}{hint}") from exc


def retry(what: str, write: Callable[[], T]) -> T:
    """Run one LanceDB write; retry commit conflicts with exponential backoff; other failures (a Rust panic too)
    become StoreError."""
    global conflicts_retried
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return write()
        except StoreError:
            raise
        except BaseException as exc:
            if not foreign_failure(exc):
                raise
            if attempt + 1 < WRITE_ATTEMPTS and retryable(exc):
                conflicts_retried += 1
                time.sleep(WRITE_BACKOFF_S * 2**attempt * (0.5 + random.random()))
                continue
            raise StoreError(f"{what}: {first_line(exc) if not isinstance(exc, Exception) else exc}") from exc
    raise AssertionError("unreachable")
