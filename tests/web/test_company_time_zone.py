"""Every time a person reads is in the company's zone, labelled; stored times stay UTC.

Two companies, one in America/Sao_Paulo (no DST since 2019) and one in
Europe/Madrid (summer time from 01:00 UTC on the last Sunday of March), register
an order at the same instant, half an hour before Madrid's change, and start it
an hour later, after the change. Both read those two instants on the order
page, the customer's page, the printed order, the e-mails and the export.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import time_machine

from chalicelib.aws import files
from chalicelib.db.accounts import Company
from chalicelib.services import mailer
from tests.web.company_factories import company_of, save_settings
from tests.web.factories import PASSWORD, code_in, last_mail_to, link_in, mails_to, unique_email
from tests.web.session import WebSession

REGISTERED = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Madrid 01:30 CET, São Paulo 21:30 (28th)
STARTED = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # Madrid 03:30 CEST, São Paulo 22:30 (28th)
ORDER = {
    "customer_name": "Lucía Gómez",
    "customer_phone": "+34 600 000 000",
    "service_type": "Boiler repair",
    "problem": "No hot water",
    "priority": "normal",
    "estimated_value": "",
}
# What each company must read (English pages, to compare the clock and the label).
EXPECTED = {
    "America/Sao_Paulo": {
        "registered": "Mar 28, 2026, 9:30\u202fPM (GMT-3)",
        "started": "Mar 28, 2026, 10:30\u202fPM (GMT-3)",
        "day": "Mar 28, 2026",
        "cell": datetime(2026, 3, 28, 21, 30),
    },
    "Europe/Madrid": {
        "registered": "Mar 29, 2026, 1:30\u202fAM (GMT+1)",
        "started": "Mar 29, 2026, 3:30\u202fAM (GMT+2)",
        "day": "Mar 29, 2026",
        "cell": datetime(2026, 3, 29, 1, 30),
    },
}


def _sign_up(client, zone: str | None) -> WebSession:
    tab = WebSession(client, accept_language="en")
    tab.email = unique_email()  # type: ignore[attr-defined]
    tab.get("/signup")
    form = {
        "company_name": f"Zone {zone}",
        "business_type": "Boiler repair",
        "area": "Centro",
        "contact_name": "Ana Souza",
        "phone": "+55 11 91234-5678",
        "email": tab.email,  # type: ignore[attr-defined]
        "password": PASSWORD,
    }
    if zone:
        form["time_zone"] = zone  # what the sign-up page's script puts there
    assert tab.post("/signup", form).status_code == 303, tab.text()
    tab.get("/verify-email")
    code = code_in(last_mail_to(tab.email))  # type: ignore[attr-defined]
    assert tab.post("/verify-email", {"code": code}).status_code == 303
    return tab


def _order_through_its_life(tab: WebSession, clock) -> tuple[str, str]:
    customer = unique_email("customer")
    tab.get("/orders/new")
    answer = tab.post("/orders/new", {**ORDER, "customer_email": customer})
    assert answer.status_code == 303, tab.text()
    order_id = answer.headers["Location"].rsplit("/", 1)[1]
    clock.move_to(REGISTERED + (STARTED - REGISTERED) / 2)
    tab.get("/orders")  # in use meanwhile: an hour without a request would end the session
    clock.move_to(STARTED)
    tab.get(f"/orders/{order_id}")
    version = re.search(r'name="version" value="(\d+)"', tab.text()).group(1)
    moved = tab.post(f"/orders/{order_id}/status", {"action": "start", "version": version})
    assert moved.status_code == 303, tab.text()
    return order_id, customer


def _export_sheet(tab: WebSession):
    from openpyxl import load_workbook

    tab.get("/orders?view=all")
    form = re.search(r'<form method="post" action="/exports".*?</form>', tab.text(), re.S)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(0)))
    answer = tab.post("/exports", fields, csrf=fields.pop("csrf_token"))
    assert answer.status_code == 303, tab.text()
    from chalicelib.db.exports import ExportJob

    job = ExportJob.get(
        *ExportJob.key(company_of(tab).company_id, answer.headers["Location"].rsplit("/", 1)[1])
    )
    stored = files.get_bytes(job.s3_key)
    return load_workbook(io.BytesIO(stored.data)).active


def test_two_companies_read_the_same_instants_in_their_own_zone_across_a_dst_change(client):
    with time_machine.travel(REGISTERED, tick=False) as clock:
        sao_paulo = _sign_up(client, "America/Sao_Paulo")
        madrid = _sign_up(client, None)  # English sign-up without a browser guess: UTC
        assert company_of(madrid).time_zone == "UTC"
        assert save_settings(madrid, time_zone="Europe/Madrid").status_code == 303
        tabs = {"America/Sao_Paulo": sao_paulo, "Europe/Madrid": madrid}
        seen: dict[str, dict[str, str]] = {}
        for zone, tab in tabs.items():
            clock.move_to(REGISTERED)
            assert company_of(tab).time_zone == zone
            order_id, customer = _order_through_its_life(tab, clock)
            want = EXPECTED[zone]
            page = tab.get(f"/orders/{order_id}").body.decode()
            printed = tab.get(f"/orders/{order_id}/print").body.decode()
            link = link_in([m for m in mails_to(customer) if "/o/" in m.text][-1], "/o/")
            visitor = WebSession(client, accept_language="en")
            customer_page = visitor.get(link).body.decode()
            seen[zone] = {"page": page, "print": printed, "customer": customer_page}
            # Stored times stay UTC and <time datetime> says so, whatever the zone.
            assert '<time datetime="2026-03-29T00:30:00Z"' in page
            assert '<time datetime="2026-03-29T01:30:00Z"' in page
            for where in ("page", "customer"):
                assert want["registered"] in seen[zone][where], (zone, where)
                assert want["started"] in seen[zone][where], (zone, where)
            assert want["registered"] in printed, zone
            # No ISO day reaches the reader (only <time datetime> carries one).
            for where in ("customer", "print"):
                visible = re.sub(r'(datetime|href|src|action|value)="[^"]*"', "", seen[zone][where])
                assert not re.findall(r"\d{4}-\d{2}-\d{2}", visible), (zone, where)
            # The e-mails the company sends read the same clock (a 48-hour intake link here).
            company = Company.get(*Company.key(company_of(tab).company_id))
            _subject, text, html = mailer.compose(
                "intake_confirm",
                "en",
                company=company,
                name="Lucía",
                link="https://example.com/x",
                hours=48,
                expires=STARTED,
                subject_params={"company": company.name},
            )
            assert want["started"] in text and want["started"] in html, zone
            sheet = _export_sheet(tab)
            titles = [cell.value for cell in sheet[1]]
            registered_column = titles.index(f"Registered ({zone})")
            assert sheet.cell(row=2, column=registered_column + 1).value == want["cell"]
        # The same instant, two clocks: the pages differ exactly where the zone does.
        assert seen["America/Sao_Paulo"]["page"] != seen["Europe/Madrid"]["page"]


def test_a_zone_that_does_not_exist_is_refused_with_everything_typed_kept(client):
    tab = WebSession(client, accept_language="pt-BR")
    tab.get("/signup")
    form = {
        "company_name": "Oficina do Zé",
        "business_type": "Refrigeração",
        "area": "Centro",
        "contact_name": "Zé",
        "phone": "+55 11 91234-5678",
        "email": unique_email(),
        "password": PASSWORD,
        "time_zone": "America/Sao Paulo",
    }
    answer = tab.post("/signup", form)
    assert answer.status_code == 422
    page = tab.text()
    assert "Informe o nome de um fuso horário" in page
    assert 'value="America/Sao Paulo"' in page and 'value="Oficina do Zé"' in page


def test_sign_up_guesses_the_zone_from_the_language_until_the_browser_says(client):
    tab = WebSession(client, accept_language="pt-BR")
    page = tab.get("/signup").body.decode()
    # The page's script replaces this with the device's zone (Intl.DateTimeFormat).
    assert 'name="time_zone" type="text" value="America/Sao_Paulo"' in page
    assert 'data-zone-guess="America/Sao_Paulo"' in page
