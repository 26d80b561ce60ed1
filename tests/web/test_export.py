"""XLSX export of the filtered order list: typed cells, neutralised formulas, private files."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.aws import files
from chalicelib.aws.clients import client as aws_client
from chalicelib.config import get_settings
from chalicelib.db.exports import ExportJob
from chalicelib.services import export, spreadsheet
from tests.web.factories import ids_of, sign_up
from tests.web.session import WebSession

ORDER = {
    "customer_name": "Carlos Pérez",
    "customer_phone": "+34 600 123 456",
    "customer_email": "carlos@example.com",
    "service_type": "Boiler repair",
    "brand": "Bosch",
    "problem": "No hot water",
    "priority": "high",
}
INJECTED = '=HYPERLINK("http://x","y")'


def _register(tab: WebSession, **overrides: str) -> str:
    tab.get("/orders/new")
    response = tab.post("/orders/new", {**ORDER, **overrides})
    assert response.status_code == 303, tab.text()
    return response.headers["Location"].rsplit("/", 1)[-1]


def _export(tab: WebSession, **filters: str) -> str:
    """Press "Export to Excel" on the list with these filters; the export's page path."""
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    tab.get(f"/orders?{query}")
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', _form(tab)))
    response = tab.post("/exports", fields, csrf=fields.pop("csrf_token"))
    assert response.status_code == 303, tab.text()
    location = response.headers["Location"]
    assert re.fullmatch(r"/exports/[0-9a-f]{16}", location)
    return location


def _form(tab: WebSession) -> str:
    match = re.search(r'<form method="post" action="/exports".*?</form>', tab.text(), re.S)
    assert match, "no export button on the order list"
    return match.group(0)


def _job(tab: WebSession, location: str) -> ExportJob:
    company_id, _ = ids_of(tab)
    return ExportJob.get(*ExportJob.key(company_id, location.rsplit("/", 1)[1]))


def _workbook(job: ExportJob):
    from openpyxl import load_workbook

    stored = files.get_bytes(job.s3_key)
    assert stored is not None
    assert stored.content_type == spreadsheet.CONTENT_TYPE
    return load_workbook(io.BytesIO(stored.data))


def _fields(tab: WebSession) -> dict[str, str]:
    """Custom fields of the company: label -> form name (cf_<id>)."""
    tab.get("/orders/new")
    names = re.findall(r'<label for="f-(cf_[0-9a-f]+)">([^<]+?)\s*(?:<|$)', tab.text())
    return {label.strip(): name for name, label in names}


def test_the_export_button_carries_the_lists_filters(client):
    tab = sign_up(client)
    tab.get("/orders?brand=Bosch&view=all&colour=red")
    form = _form(tab)
    assert 'name="brand" value="Bosch"' in form
    assert 'name="view" value="all"' in form
    assert 'name="colour" value="red"' in form
    assert 'name="csrf_token"' in form


def test_export_needs_the_csrf_token(client):
    tab = sign_up(client)
    response = tab.post("/exports", {"view": "all"}, csrf=None)
    assert response.status_code == 403


def test_export_has_the_filtered_rows_every_field_and_real_types(client):
    tab = sign_up(client)
    for label, kind in (("IMEI", "text"), ("Deposit", "number"), ("Warranty until", "date")):
        tab.get("/settings/fields")
        assert tab.post("/settings/fields", {"label": label, "kind": kind}).status_code == 303
    custom = _fields(tab)
    _register(
        tab,
        customer_name="Ana Bosch Owner",
        service_date="2031-05-20",
        service_time="14:30",
        estimated_value="1,234.50",  # as English writes it
        **{
            custom["IMEI"]: "356938035643809",
            custom["Deposit"]: "50",
            custom["Warranty until"]: "2032-01-31",
        },
    )
    _register(tab, customer_name="Bruno Bosch Owner")
    _register(tab, customer_name="Lia LG Owner", brand="LG")
    location = _export(tab, brand="Bosch", view="all")
    tab.get(location)
    assert "Your export of 2 orders is ready." in tab.text()
    sheet = _workbook(_job(tab, location)).active
    rows = list(sheet.iter_rows(values_only=True))
    header, data = rows[0], rows[1:]
    assert len(data) == 2
    for title in ("Order number", "Status", "Registered (UTC)", "Customer name", "Phone"):
        assert title in header
    for title in ("Service date", "Estimated value", "Internal notes", "IMEI", "Deposit"):
        assert title in header
    assert header[-3:] == ("IMEI", "Deposit", "Warranty until")
    by_name = {
        row[header.index("Customer name")]: dict(zip(header, row, strict=True)) for row in data
    }
    assert set(by_name) == {"Ana Bosch Owner", "Bruno Bosch Owner"}
    ana = by_name["Ana Bosch Owner"]
    assert isinstance(ana["Registered (UTC)"], datetime)
    assert ana["Service date"] == datetime(2031, 5, 20)
    assert ana["Service time"] == time(14, 30)  # a time value, not text
    assert ana["Estimated value"] == pytest.approx(1234.5)
    assert ana["IMEI"] == "356938035643809"  # text stays text (no 3.57E+14)
    assert ana["Deposit"] == 50
    assert ana["Warranty until"] == datetime(2032, 1, 31)
    assert ana["Status"] == "Registered" and ana["Priority"] == "High"
    assert ana["Aging colour"] == "Service date ahead"
    assert isinstance(ana["Order number"], int)


def test_header_is_styled_frozen_and_filterable_with_sensible_widths(client):
    tab = sign_up(client)
    _register(tab)
    tab.get(location := _export(tab, view="all"))
    sheet = _workbook(_job(tab, location)).active
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}2"
    first = sheet.cell(1, 1)
    assert first.font.bold and first.fill.fgColor.rgb.endswith(spreadsheet.HEADER_FILL)
    widths = {
        sheet.cell(1, c).value: sheet.column_dimensions[sheet.cell(1, c).column_letter].width
        for c in range(1, sheet.max_column + 1)
    }
    assert widths["Reported problem"] > widths["Customer name"] > widths["Order number"]
    assert all(8 <= width <= 60 for width in widths.values())


def test_formula_injection_is_stored_as_text_with_the_value_kept(client):
    tab = sign_up(client)
    _register(
        tab,
        customer_name=INJECTED,
        model="@SUM(A1:A9)",
        serial="-2+3",
        problem="+1 call the customer",
    )
    tab.get(location := _export(tab, view="all"))
    sheet = _workbook(_job(tab, location)).active
    header = [cell.value for cell in sheet[1]]
    row = {header[i]: cell for i, cell in enumerate(sheet[2])}
    for title, value in (
        ("Customer name", INJECTED),
        ("Model", "@SUM(A1:A9)"),
        ("Serial number", "-2+3"),
        ("Reported problem", "+1 call the customer"),
    ):
        cell = row[title]
        assert cell.value == value
        assert cell.data_type == "s", f"{title} would be evaluated ({cell.data_type})"
        assert cell.quotePrefix, f"{title} would turn into a formula when edited"
    # The phone starts with "+" too: a plain string cell, never a number or formula.
    assert row["Phone"].data_type == "s" and row["Phone"].value == ORDER["customer_phone"]


def test_the_file_is_private_and_reached_only_through_a_short_lived_presigned_link(client):
    tab = sign_up(client)
    _register(tab)
    tab.get(location := _export(tab, view="all"))
    job = _job(tab, location)
    company_id, _ = ids_of(tab)
    assert job.s3_key.startswith(f"exports/{company_id}/") and job.s3_key.endswith(".xlsx")
    links = re.findall(r'href="([^"]+)"', tab.text().replace("&amp;", "&"))
    to_file = [link for link in links if job.s3_key in link]
    assert len(to_file) == 1, "the page links the file once, through the presigned URL"
    query = parse_qs(urlsplit(to_file[0]).query)
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-Signature"]
    assert query["response-content-disposition"][0].startswith("attachment; filename=")
    assert ".xlsx" in query["response-content-disposition"][0]
    s3 = aws_client("s3")
    block = s3.get_public_access_block(Bucket=get_settings().bucket_name)
    assert all(block["PublicAccessBlockConfiguration"].values())
    grants = s3.get_object_acl(Bucket=get_settings().bucket_name, Key=job.s3_key)["Grants"]
    assert not [g for g in grants if "AllUsers" in str(g.get("Grantee", {}).get("URI", ""))]


def test_large_export_runs_in_the_background_shows_progress_and_notifies(client, monkeypatch):
    monkeypatch.setattr(export, "IN_REQUEST_ROWS", 3)
    monkeypatch.setattr(export, "PROGRESS_EVERY", 2)
    started: list[ExportJob] = []
    monkeypatch.setattr(export, "_start_background", started.append)
    tab = sign_up(client)
    for n in range(7):
        _register(tab, customer_name=f"Customer {n}")
    location = _export(tab, view="all")
    tab.get(location)
    assert "Your export is queued" in tab.text()
    assert '<meta http-equiv="refresh" content="2">' in tab.text()
    assert len(started) == 1 and started[0].status == "queued"

    seen: list[tuple[str, int]] = []
    original = ExportJob.update

    def recording(self, *args, **kwargs):
        answer = original(self, *args, **kwargs)
        seen.append((self.status, int(self.rows)))
        return answer

    monkeypatch.setattr(ExportJob, "update", recording)
    company_id, _ = ids_of(tab)
    result = client.lambda_.invoke(
        "export_orders", {"company_id": company_id, "export_id": started[0].export_id}
    )
    assert result.payload == {"status": "done"}
    assert seen == [("running", 0), ("running", 2), ("running", 4), ("running", 6), ("done", 7)]
    # A repeated event (Lambda retries) does nothing.
    again = client.lambda_.invoke(
        "export_orders", {"company_id": company_id, "export_id": started[0].export_id}
    )
    assert again.payload == {"status": "skipped"}
    tab.get(location)
    assert "Your export of 7 orders is ready." in tab.text()
    assert 'id="download"' in tab.text() and "http-equiv" not in tab.text()
    assert len(list(_workbook(_job(tab, location)).active.iter_rows())) == 8
    tab.get("/notifications")
    assert "Your Excel export of 7 orders is ready to download." in tab.text()


def test_the_request_spends_at_most_a_few_queries_before_handing_over(client, monkeypatch):
    # A rare filter over a long list: pages read in the request are bounded too.
    monkeypatch.setattr(export, "WALK_PAGE", 2)
    monkeypatch.setattr(export, "IN_REQUEST_PAGES", 2)
    started: list[ExportJob] = []
    monkeypatch.setattr(export, "_start_background", started.append)
    tab = sign_up(client)
    for n in range(5):
        _register(tab, customer_name=f"Paged {n}")
    _export(tab, view="all")
    assert len(started) == 1  # 5 rows, but 2 pages of 2 did not reach the end


def test_locally_the_background_export_runs_in_a_thread(client, monkeypatch):
    monkeypatch.setattr(export, "IN_REQUEST_ROWS", 1)
    tab = sign_up(client)
    for n in range(3):
        _register(tab, customer_name=f"Threaded {n}")
    location = _export(tab, view="all")
    export.join_background()
    tab.get(location)
    assert "Your export of 3 orders is ready." in tab.text()


def test_another_company_cannot_open_an_export(client):
    owner = sign_up(client)
    _register(owner)
    location = _export(owner, view="all")
    intruder = sign_up(client)
    response = intruder.get(location)
    assert response.status_code == 404
    assert "Download" not in intruder.text()


def test_an_expired_export_is_gone(client):
    tab = sign_up(client)
    _register(tab)
    location = _export(tab, view="all")
    job = _job(tab, location)
    job.update(actions=[ExportJob.expires_at.set(datetime(2020, 1, 1, tzinfo=UTC))])
    assert tab.get(location).status_code == 404


def test_an_export_that_stopped_reporting_is_shown_as_failed(client, monkeypatch):
    monkeypatch.setattr(export, "IN_REQUEST_ROWS", 0)
    monkeypatch.setattr(export, "_start_background", lambda job: None)  # a Lambda that died
    tab = sign_up(client)
    _register(tab)
    location = _export(tab, view="all")
    tab.get(location)
    assert "queued" in tab.text()
    stale = datetime.now(UTC) - timedelta(minutes=export.STALLED_MINUTES + 1)
    _job(tab, location).update(actions=[ExportJob.updated_at.set(stale)])
    tab.get(location)
    assert "The export could not be completed" in tab.text()
    assert "http-equiv" not in tab.text()
