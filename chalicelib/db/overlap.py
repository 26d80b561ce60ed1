"""Independent reads sent together: a page waits for the slowest of them, not their sum.

A page's reads that need nothing from each other's answers (its partition's two sides,
the dashboard's counters and open orders) go out at the same time: the first on the
calling thread, the others on a small shared pool (botocore clients are thread-safe).
Every read finishes before the caller goes on, so an error is raised where it was
before (the first in the order given) and no read outlives its request.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# A page overlaps at most three reads; Lambda serves one request per process at a time.
_WORKERS = 4
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="read")
    return _pool


def _forget_pool_after_fork() -> None:
    """A forked child has none of its parent's threads: it starts a pool of its own.

    (Otherwise the inherited pool counts its dead workers as busy and never runs a read.)
    """
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def together(*reads: Callable[[], Any]) -> list[Any]:
    """Each read's answer, in order; the reads run at the same time."""
    if len(reads) < 2:
        return [read() for read in reads]
    first, *rest = reads
    pending: list[Future[Any]] = [_executor().submit(read) for read in rest]
    answers: list[Any] = []
    error: BaseException | None = None
    try:
        answers.append(first())
    except BaseException as problem:  # re-raised below, once every read has finished
        error = problem
    for future in pending:
        try:
            answers.append(future.result())
        except BaseException as problem:
            error = error or problem
    if error is not None:
        raise error
    return answers


def start(read: Callable[[], T]) -> Callable[[], T]:
    """Send ``read`` now, on the pool; calling what this returns waits for its answer
    (or raises its error). The caller must call it before its request ends."""
    return _executor().submit(read).result
