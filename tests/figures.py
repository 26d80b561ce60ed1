"""Figure lines: what a suite measured, printed together at the end of the pytest run.

A suite calls ``report("injection", payloads=40, views=23, unescaped=0)``; the
line is appended to the run's figures file (shared by xdist workers through
the ``CHECKOS_FIGURES`` variable the controller sets) and printed in the
"figures" section of the terminal summary, so `make test`, `make security`
and `make load` end with the numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class NothingMeasured(AssertionError):
    """A figure the suite must have measured is zero or missing: the suite did no work."""


def format_line(suite: str, figures: dict[str, object]) -> str:
    return f"{suite}: " + ", ".join(f"{name}={value}" for name, value in figures.items())


def report(suite: str, *, require: Iterable[str] = (), **figures: object) -> str:
    """Write the line first (a failing run still shows its numbers), then check it.

    ``require`` names the figures that count work done (cells, cases, payloads…): each
    must be present and non-zero, or the test fails. Call it before the asserts that
    check the figures, with values computed from what the test measured.
    """
    line = format_line(suite, figures)
    path = os.environ.get("CHECKOS_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    if not figures:
        raise NothingMeasured(f"{suite}: a figure line with no figures")
    empty = [name for name in require if not figures.get(name)]
    if empty:
        raise NothingMeasured(f"{suite}: nothing measured for {', '.join(empty)} ({line})")
    return line


@contextmanager
def reporting(suite: str, *, require: Iterable[str] = ()) -> Iterator[dict[str, object]]:
    """Fill the yielded dict while measuring; the line is written however the block ends.

    When the block fails, its own error stands (the line shows how far it got); when it
    succeeds, ``require`` is checked as in :func:`report`.
    """
    figures: dict[str, object] = {}
    ok = False
    try:
        yield figures
        ok = True
    finally:
        if ok:
            report(suite, require=require, **figures)
        else:
            report(suite, **(figures or {"measured": "nothing"}))


def collected() -> list[str]:
    path = os.environ.get("CHECKOS_FIGURES")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines if line.strip()]
