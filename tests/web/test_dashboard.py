"""The dashboard at ``/``: example data until the first completed order, then real charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import time_machine

from chalicelib.db.stats import Stat
from chalicelib.services import sessions
from chalicelib.web.context import _session_cookie
from tests.web.factories import ids_of, sign_up
from tests.web.session import WebSession

ORDER = {
    "customer_name": "Carlos Pérez",
    "customer_phone": "+34 600 123 456",
    "service_type": "Boiler repair",
    "brand": "Vaillant",
    "problem": "No hot water",
    "priority": "normal",
}
EXAMPLE_LABEL = "Example data"


def _register(tab: WebSession, **overrides: str) -> str:
    tab.get("/orders/new")
    response = tab.post("/orders/new", {**ORDER, **overrides})
    assert response.status_code == 303, tab.text()
    return response.headers["Location"].rsplit("/", 1)[-1]


def _complete(tab: WebSession, order_id: str) -> None:
    for action in ("start", "complete"):
        tab.get(f"/orders/{order_id}")
        assert tab.post(f"/orders/{order_id}/status", {"action": action}).status_code == 303


def _legend_count(body: str, colour: str) -> int:
    item = re.search(
        rf'<a href="/orders\?colour={colour}">[^<]*</a>\s*<span class="legend-count">(\d+)<', body
    )
    assert item, f"no {colour} entry in the aging legend"
    return int(item.group(1))


def _table_rows(body: str, caption: str) -> dict[str, str]:
    table = re.search(rf"<caption>{re.escape(caption)}</caption>(.*?)</table>", body, re.S)
    assert table, f"no data table captioned {caption!r}"
    cells = re.findall(r'<th scope="row">([^<]*)</th><td>(\d+)</td>', table.group(1))
    return dict(cells)


def test_a_new_company_sees_labelled_example_charts_and_its_profile_reminders(client):
    tab = sign_up(client, validate=False)
    tab.get("/")
    body = tab.text()
    words = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    assert "Example data — your charts appear when you complete your first order" in words
    assert body.count('class="example-badge"') == 3
    # The profile reminders stay on the first page.
    assert 'id="missing-profile"' in body
    assert "cannot e-mail your customers" in body
    # The example is realistic: ten types, ten brands, every colour, twelve weeks.
    assert len(_table_rows(body, "Service types")) == 10
    assert len(_table_rows(body, "Brands")) == 10
    assert "Screen replacement" in body and "Samsung" in body
    # Example bars are not links to (someone else's) orders; the legend's links are real.
    assert 'class="bar-link"' not in body
    assert '<a href="/orders?colour=red">' in body


def test_example_data_is_the_same_on_every_load(client):
    tab = sign_up(client)
    first = tab.get("/") and tab.text()
    second = tab.get("/") and tab.text()
    svg = re.compile(r"<svg.*?</svg>", re.S)
    assert svg.findall(first) == svg.findall(second)


def test_charts_are_accessible_inline_svg_without_style_attributes(client):
    tab = sign_up(client)
    tab.get("/")
    body = tab.text()
    figures = re.findall(r"<figure.*?</figure>", body, re.S)
    assert len(figures) == 3
    for figure in figures:
        assert "<figcaption" in figure
        assert '<div class="visually-hidden"><table>' in figure
    svgs = re.findall(r"<svg[^>]*>", body)
    assert len(svgs) == 4  # aging, weeks, types, brands
    for tag in svgs:
        assert 'role="img"' in tag and 'width="100%"' in tag and "viewBox=" in tag
        labelled = re.search(r'aria-labelledby="([^"]+)"', tag).group(1).split()
        for target in labelled:
            assert f'id="{target}"' in body, f"aria-labelledby points to a missing {target}"
    assert 'class="axis-title"' in body
    assert " style=" not in body  # CSP style-src 'self': classes and SVG attributes only
    assert "http://" not in re.sub(r'href="http://testserver[^"]*"', "", body.split("<main")[1])


def test_completed_order_brings_real_data_highest_first(client):
    tab = sign_up(client)
    for _ in range(3):
        _register(tab, service_type="Boiler repair", brand="Vaillant")
    _register(tab, service_type="Screen", brand="Samsung")
    done = _register(tab, service_type="Screen", brand="Apple")
    _complete(tab, done)
    tab.get("/")
    body = tab.text()
    assert EXAMPLE_LABEL not in body
    types = _table_rows(body, "Service types")
    assert list(types.items()) == [("Boiler repair", "3"), ("Screen", "2")]
    brands = _table_rows(body, "Brands")
    assert next(iter(brands)) == "Vaillant" and brands["Apple"] == "1"
    assert re.search(r'id="open-orders">4<', body)
    week = sessions.now().isocalendar()
    this_week = f"{week.year}-W{week.week:02d}"
    row = re.search(rf"<th scope=\"row\">{this_week}[^<]*</th><td>(\d+)</td><td>(\d+)</td>", body)
    assert row and row.groups() == ("5", "1")


def test_thirty_one_days_later_the_red_bar_lists_the_red_orders(client):
    tab = sign_up(client)
    late = [_register(tab, customer_name=f"Late Customer {n}") for n in range(2)]
    _complete(tab, _register(tab, customer_name="Finished Customer"))
    company_id, user_id = ids_of(tab)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=31), tick=True):
        # Thirty-one days idle would sign anyone out: a fresh session, as after a login.
        later = WebSession(client)
        token = sessions.start_session(user_id, company_id)
        later.cookies["sid"] = _session_cookie(token, user_id, company_id)
        later.get("/")
        body = later.text()
        assert _legend_count(body, "red") == 2
        assert _legend_count(body, "green") == 0
        assert 'data-href="/orders?colour=red"' in body
        # The chart is one image to assistive technology: no link inside it.
        chart = body[body.index('<svg class="chart chart-hbar" id="aging-svg"') :]
        assert "<a " not in chart[: chart.index("</svg>")]
        later.get("/orders?colour=red")
        listed = later.text()
    for order_id in late:
        assert f"/orders/{order_id}" in listed
    assert "Finished Customer" not in listed


def test_dashboard_costs_three_requests_session_counters_and_open_orders(client, budget):
    tab = sign_up(client)
    for _ in range(3):
        _register(tab)
    with budget:
        response = tab.get("/")
    assert response.status_code == 200
    operations = sorted(c.operation for c in budget.dynamodb)
    assert operations == ["BatchGetItem", "Query", "Query"]


def test_average_rating_comes_from_the_rating_counter(client):
    tab = sign_up(client)
    tab.get("/")
    assert "No ratings yet" in tab.text()
    company_id, _ = ids_of(tab)
    Stat(*Stat.key(company_id, "RATING"), total=23, count=5).save()
    tab.get("/")
    assert re.search(r'id="rating">4.6 ', tab.text())
    assert "5 ratings" in tab.text()
    tab.cookies["lang"] = "es"  # Spanish writes a decimal comma
    tab.get("/")
    assert re.search(r'id="rating">4,6 ', tab.text())
