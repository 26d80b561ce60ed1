"""The spreadsheet reads well in Excel/LibreOffice and on paper, in every language."""

from __future__ import annotations

from datetime import time

import pytest

from chalicelib.i18n import LOCALES
from tests.web.factories import sign_up
from tests.web.test_export import _export, _job, _register, _workbook


def _lines_needed(title: str, width: float) -> int:
    """How many lines a bold title wraps to at word boundaries in ``width`` characters."""
    room = width / 1.2  # bold characters are wider than the width's unit (a digit)
    assert all(len(word) <= room for word in title.split()), f"a word of {title!r} is cut"
    lines, current = 1, 0
    for word in title.split():
        size = len(word) + (1 if current else 0)
        if current and current + size > room:
            lines, current = lines + 1, len(word)
        else:
            current += size
    return lines


@pytest.mark.parametrize("locale", LOCALES)
def test_headers_are_fully_visible_and_named_in_every_language(client, locale):
    tab = sign_up(client, locale=locale)
    _register(tab, service_time="09:45")
    tab.get(location := _export(tab, view="all"))
    sheet = _workbook(_job(tab, location)).active
    height = sheet.row_dimensions[1].height
    assert height is not None
    for column in range(1, sheet.max_column + 1):
        cell = sheet.cell(1, column)
        width = sheet.column_dimensions[cell.column_letter].width
        assert cell.alignment.wrap_text, cell.value
        assert cell.font.name, "an unnamed font falls back to a serif in LibreOffice"
        needed = _lines_needed(str(cell.value), width)
        assert height >= 15 * needed, (locale, cell.value, width, height)


def test_printing_is_landscape_fit_to_width_with_titles_and_page_numbers(client):
    tab = sign_up(client)
    for number in range(3):
        _register(tab, customer_name=f"Paper {number}", service_time="14:30")
    tab.get(location := _export(tab, view="all"))
    sheet = _workbook(_job(tab, location)).active
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.page_setup.fitToWidth == 1 and sheet.page_setup.fitToHeight == 0
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.print_title_cols == "$A:$A"  # the order number on every page
    assert "&P" in sheet.oddFooter.center.text and "&N" in sheet.oddFooter.center.text
    header = [cell.value for cell in sheet[1]]
    times = [row[header.index("Service time")].value for row in sheet.iter_rows(min_row=2)]
    assert times == [time(14, 30)] * 3  # a time value, not the text "14:30"
    formats = {
        row[header.index("Service time")].number_format for row in sheet.iter_rows(min_row=2)
    }
    assert formats == {"hh:mm"}


def test_two_exports_in_the_same_minute_get_different_file_names(client):
    tab = sign_up(client)
    _register(tab)
    first = _job(tab, _export(tab, view="all"))
    second = _job(tab, _export(tab, view="all"))
    assert first.filename and second.filename
    assert first.filename != second.filename
    assert first.filename.endswith(".xlsx")
