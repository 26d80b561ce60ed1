"""db/overlap.py: a page's independent reads run at the same time, answers in order, and
an error surfaces only once every read has finished."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from chalicelib.db.overlap import together


def test_reads_run_at_the_same_time_and_answer_in_order():
    arrived = threading.Barrier(3, timeout=5)  # breaks unless all three wait at once

    def read(answer: str):
        def run() -> str:
            arrived.wait()
            return answer

        return run

    assert together(read("a"), read("b"), read("c")) == ["a", "b", "c"]


def test_the_first_error_is_raised_after_every_read_has_finished():
    finished = []

    def slow() -> str:
        time.sleep(0.05)
        finished.append("slow")
        return "late"

    def failing() -> str:
        raise LookupError("not found")

    with pytest.raises(LookupError):
        together(failing, slow)
    assert finished == ["slow"]
    with pytest.raises(KeyError):
        together(lambda: {}["x"], lambda: [][0])  # the first in the order given


def test_one_read_runs_on_the_calling_thread():
    assert together(threading.get_ident) == [threading.get_ident()]


def test_a_forked_process_gets_a_pool_of_its_own():
    """A child forked after the pool started (mutmut, a forking server) still overlaps reads.

    The inherited pool would count the parent's workers, which do not exist in the child,
    and never run a read: the child would wait forever.
    """
    assert together(lambda: 1, lambda: 2) == [1, 2]  # the parent's pool has workers now
    pid = os.fork()
    if pid == 0:  # the child: answer within the alarm, or die of it
        signal.alarm(5)
        code = 0 if together(lambda: "a", lambda: "b", lambda: "c") == ["a", "b", "c"] else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
