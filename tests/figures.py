"""Figure lines: what a suite measured, printed together at the end of the pytest run.

A suite calls ``report("injection", payloads=40, views=23, unescaped=0)``; the
line is appended to the run's figures file (shared by xdist workers through
the ``CHECKOS_FIGURES`` variable the controller sets) and printed in the
"figures" section of the terminal summary, so `make test`, `make security`
and `make load` end with the numbers.
"""

from __future__ import annotations

import os


def format_line(suite: str, figures: dict[str, object]) -> str:
    return f"{suite}: " + ", ".join(f"{name}={value}" for name, value in figures.items())


def report(suite: str, **figures: object) -> str:
    line = format_line(suite, figures)
    path = os.environ.get("CHECKOS_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    return line


def collected() -> list[str]:
    path = os.environ.get("CHECKOS_FIGURES")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines if line.strip()]
