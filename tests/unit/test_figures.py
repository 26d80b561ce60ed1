"""Figure lines: written before they are checked, and a line with nothing measured fails."""

from __future__ import annotations

import pytest

from tests.figures import NothingMeasured, collected, report, reporting


@pytest.fixture
def figures_file(tmp_path, monkeypatch):
    path = tmp_path / "figures.txt"
    monkeypatch.setenv("CHECKOS_FIGURES", str(path))
    return path


def test_a_required_figure_of_zero_fails_after_the_line_is_written(figures_file):
    with pytest.raises(NothingMeasured, match="cells"):
        report("access", require=("cells",), cells=0, leaks=0)
    assert collected() == ["access: cells=0, leaks=0"]


def test_a_missing_required_figure_or_an_empty_line_fails(figures_file):
    with pytest.raises(NothingMeasured):
        report("access", require=("cells",), leaks=0)
    with pytest.raises(NothingMeasured):
        report("access")


def test_measured_figures_pass(figures_file):
    assert report("access", require=("cells",), cells=12, leaks=0) == "access: cells=12, leaks=0"


def test_reporting_writes_the_line_when_the_block_fails(figures_file):
    with pytest.raises(AssertionError, match="accepted"), reporting("csrf") as figures:
        figures.update(attempts=5, accepted=1)
        assert figures["accepted"] == 0, "accepted a forged request"
    assert collected() == ["csrf: attempts=5, accepted=1"]


def test_reporting_fails_when_nothing_was_measured(figures_file):
    with pytest.raises(NothingMeasured), reporting("csrf", require=("attempts",)) as figures:
        figures.update(attempts=0, accepted=0)
    assert collected() == ["csrf: attempts=0, accepted=0"]
