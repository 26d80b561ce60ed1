"""Spreadsheet formula injection: every exported text field holds a formula payload; none is live.

Orders are registered through the service layer (the same ``register_order``
the pages call) with a formula in every text field, custom field (label,
text value, choice option), the technician's and author's names and the
cancellation reason. The XLSX export of the list is opened with openpyxl:
no cell may be a formula, and no text cell that starts like one may lack
the quote prefix that keeps Excel from evaluating it once edited.
"""

from __future__ import annotations

import io

import pytest

from chalicelib.aws import files
from chalicelib.db.accounts import Company
from chalicelib.db.exports import DONE, ExportJob
from chalicelib.services import custom_fields, export, orders, signup
from chalicelib.services.orders import Actor, OrderFilters
from tests.figures import report
from tests.security.payloads import FORMULAS, as_stored
from tests.web.factories import PASSWORD, unique_email

# Spreadsheet programs evaluate text starting with these (OWASP's list: Excel, LibreOffice, Sheets).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
TEXT_FIELDS = {name: n for name, (n, _multi) in orders.TEXT_FIELDS.items()}


def _company_with_formulas() -> tuple[Company, Actor]:
    payloads = list(FORMULAS.values())
    account = signup.sign_up(
        {
            "company_name": "Formula Works",
            "business_type": "Repairs",
            "area": "Lisbon",
            "contact_name": payloads[0],  # the author and technician column
            "phone": "+351 912 345 678",
            "email": unique_email("formulas"),
            "password": PASSWORD,
        },
        "en",
    )
    company = account.company
    custom_fields.add_field(company, {"label": payloads[1], "kind": "text"})
    custom_fields.add_field(company, {"label": payloads[4][:60], "kind": "number"})
    options = "\n".join(p.replace(",", ";") for p in payloads[:6])
    custom_fields.add_field(company, {"label": payloads[3], "kind": "choice", "options": options})
    company = Company.get(*Company.key(company.company_id), consistent_read=True)
    actor = Actor(
        name=account.user.name, user_id=account.user.user_id, company_id=company.company_id
    )
    return company, actor


def _register(company: Company, actor: Actor, payload: str, index: int) -> None:
    form = {name: payload[:n] for name, n in TEXT_FIELDS.items()}
    form.update(customer_email=f"formula{index}@example.com", priority="normal")
    form["technician_id"] = actor.user_id
    for spec in company.custom_fields:
        if spec.kind == "text":
            form[f"cf_{spec.field_id}"] = payload
        elif spec.kind == "choice":
            form[f"cf_{spec.field_id}"] = spec.options[index % len(spec.options)]
    order = orders.register_order(company, actor, form, {actor.user_id: actor.name})
    if index % 2:
        orders.change_status(company.company_id, order.order_id, actor, "cancel", note=payload)


def _workbook(company: Company, actor: Actor):
    from openpyxl import load_workbook

    job = export.request_export(
        company, actor.user_id, OrderFilters.from_query({"view": "all"}), "en"
    )
    job = ExportJob.get(*ExportJob.key(company.company_id, job.export_id), consistent_read=True)
    assert job.status == DONE, job.status
    stored = files.get_bytes(job.s3_key)
    assert stored is not None
    return load_workbook(io.BytesIO(stored.data))


def test_no_exported_cell_is_a_live_formula(aws) -> None:
    company, actor = _company_with_formulas()
    for index, payload in enumerate(FORMULAS.values()):
        _register(company, actor, payload, index)
    sheet = _workbook(company, actor).active
    stored = {as_stored(p) for p in FORMULAS.values()} | {
        as_stored(p)[:60] for p in FORMULAS.values()
    }
    cells, live, columns = 0, [], set()
    for row in sheet.iter_rows():
        for cell in row:
            value = cell.value
            if cell.data_type == "f":
                live.append((cell.coordinate, value))
                continue
            if not isinstance(value, str):
                continue
            from_payload = any(value.startswith(s[:8]) for s in stored if s)
            if from_payload:
                cells += 1
                columns.add(cell.column)
            if value.startswith(FORMULA_STARTS) and not cell.quotePrefix:
                live.append((cell.coordinate, value))
    report(
        "formulas",
        require=("payloads", "fields", "cells"),
        payloads=len(FORMULAS),
        fields=len(columns),
        cells=cells,
        live_formulas=len(live),
    )
    assert cells >= len(FORMULAS) * 10, "the payloads did not reach the export"
    assert len(columns) >= 15, f"only {len(columns)} columns carried a payload"
    assert not live, f"live formulas in the export: {live[:10]}"


@pytest.mark.parametrize("payload", ["=1+1", '=HYPERLINK("http://evil.example","x")', "@SUM(1)"])
def test_the_check_above_can_fail(payload: str) -> None:
    """A workbook written without the export's guard has exactly the cells the test counts."""
    from openpyxl import Workbook, load_workbook

    book = Workbook()
    book.active.append([payload])
    out = io.BytesIO()
    book.save(out)
    cell = load_workbook(io.BytesIO(out.getvalue())).active["A1"]
    assert cell.data_type == "f" or (
        str(cell.value).startswith(FORMULA_STARTS) and not cell.quotePrefix
    )
