"""Every e-mail kind x 3 languages x {logo, no logo}, with awkward real data, read back as mail.

Each message goes through the real send path (mailer → SES adapter → moto SES)
with the context the sending service gives it; then its raw MIME is read by
the standard library and by fast-mail-parser (Rust, no shared code):
address headers round-trip, Date and Message-ID are there, the subject
decodes to the intended text; SpamAssassin (Debian's, local rules only, no
network tests) scores it; Chromium renders every HTML part on one 390 px
page, one after the other, and measures how wide each one gets.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import fast_mail_parser
import pytest

from chalicelib.aws import mail
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.i18n import LOCALES
from chalicelib.services import delivery, mailer, orders
from tests.figures import report
from tests.service.factories import new_company, order_form, staff_actor

SPAM_LIMIT = 1.0
PHONE_WIDTH = 390
CHROMIUM = "/usr/bin/chromium"
# 120 characters: accents, quotes, a semicolon, angle brackets, an ampersand.
COMPANY = (
    'Refrigeração "Polo Norte"; Filial <Zé> & Conceição Araújo — Assistência Técnica '
    "Autorizada de São José dos Campos Ltda"
)
CUSTOMER = 'José "Zé" Núñez; <Filial 2> Conceição Araújo (Apto. 12) \\ Peña'
CUSTOMER_EMAIL = "cliente.nunez@exemplo-ção.com.br"
COMPANY_EMAIL = "oficina@refrigeração-polonorte.com.br"
# Long unbroken strings as customers paste them: an address and a shared-file link.
LONG_PROBLEM = (
    "Não gela desde ontem; mandei fotos para suporte.tecnico.refrigeracao.polonorte@"
    "exemplo-muito-comprido.com.br e https://drive.google.com/file/d/"
    "1Zq8XvTbRk3LmNw7PaYs2UoDfHgJcEiVbQx9TzKlMnOp/view?usp=sharing_and_more_parameters"
    ' — ver <anexo> "urgente"; não sei se é o gás R-600a'
)
CUSTOMER_KINDS = (
    "customer_access",
    "customer_scheduled",
    "customer_started",
    "customer_completed",
    "customer_cancelled",
    "customer_reopened",
)
OTHER_KINDS = (
    "email_code",
    "password_reset",
    "account_unlock",
    "invitation",
    "partner_invite",
    "partner_request",
    "intake_confirm",
    "intake_new_order",
    "inactivity_warning",
    "inactivity_notice",
)
KINDS = CUSTOMER_KINDS + OTHER_KINDS


def _kinds_on_disk() -> set[str]:
    folder = Path(__file__).resolve().parents[2] / "templates" / "emails"
    return {p.stem for p in folder.glob("*.html") if not p.stem.startswith("_")} - {"customer_base"}


def test_the_list_above_is_every_kind_of_e_mail() -> None:
    assert set(KINDS) == _kinds_on_disk()


def _company() -> tuple[Company, object]:
    account = new_company(COMPANY)
    company = account.company
    company.update(
        actions=[
            Company.email.set(COMPANY_EMAIL),
            Company.email_validated.set(True),
            Company.locale.set("pt-BR"),
        ]
    )
    return Company.get(*Company.key(company.company_id), consistent_read=True), account


def _send(kind: str, locale: str, logo: bool, company: Company, order) -> dict:
    """Send one message the way its service does; what was meant (for the checks).

    Only customer e-mails carry the company logo; the others are sent twice alike.
    """
    base = get_settings().base_url
    logo_url = f"{base}/logo/{company.company_id}/logo.png" if logo else None
    meant: dict = {"from_name": company.name, "to": CUSTOMER_EMAIL, "to_name": None}
    if kind in CUSTOMER_KINDS:
        params = {"company": company.name, "number": order.number}
        meant.update(reply_to=company.email, to_name=CUSTOMER, params=params)
        mailer.send_templated(
            CUSTOMER_EMAIL,
            kind,
            locale,
            reply_to=company.email,
            from_name=company.name,
            to_name=CUSTOMER,
            opt_out_company=company.company_id,
            unsubscribe_url=delivery.opt_out_url(
                company.company_id, order.order_id, CUSTOMER_EMAIL
            ),
            order_id=order.order_id,
            subject_params=params,
            company=company,
            order=order,
            link=f"{base}/o/{'x' * 43}" if kind == "customer_access" else None,
            follow_url=f"{base}/follow/{company.slug}?number={order.number}",
            logo_url=logo_url,
            days_open=180,
            days_closed=60,
        )
        return meant
    common = {"reply_to": None, "from_name": company.name}
    if kind == "email_code":
        context = {"company": company, "code": "042917", "minutes": 15}
    elif kind == "password_reset":
        context = {"link": f"{base}/password/reset/{'r' * 43}", "minutes": 60}
        common["from_name"] = None
    elif kind == "account_unlock":
        context = {"link": f"{base}/login/unlock/{'u' * 43}", "hours": 24}
        common["from_name"] = None
    elif kind == "invitation":
        context = {
            "reply_to": company.email,
            "company": company,
            "inviter": CUSTOMER,
            "name": CUSTOMER,
            "role": "staff",
            "link": f"{base}/invite/{'i' * 43}",
            "days": 7,
            "subject_params": {"company": company.name},
        }
    elif kind == "partner_invite":
        context = {
            "reply_to": company.email,
            "inviter": company.name,
            "person": CUSTOMER,
            "company_name": COMPANY,
            "relation": "both",
            "link": f"{base}/signup?invite={'p' * 43}",
            "days": 14,
            "subject_params": {"inviter": company.name},
        }
    elif kind == "partner_request":
        context = {
            "reply_to": company.email,
            "partner": company.name,
            "relation": "execute",
            "changed": False,
            "link": f"{base}/partners/{company.company_id}",
            "subject_params": {"partner": company.name},
        }
    elif kind == "intake_confirm":
        context = {
            "reply_to": company.email,
            "company": company,
            "name": CUSTOMER,
            "link": f"{base}/intake/confirm/{'c' * 43}",
            "hours": 24,
            "expires": datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
            "subject_params": {"company": company.name},
        }
    elif kind == "intake_new_order":
        common["from_name"] = "CheckOS"
        context = {
            "company": company,
            "order": order,
            "link": f"{base}/orders/{order.order_id}",
            "subject_params": {"number": order.number, "name": order.customer_name},
        }
    else:  # the inactivity job's two e-mails
        context = {
            "company": company,
            "link": f"{base}/login",
            "last_day": "2026-06-01",
            "deadline": "2026-12-20",
            "days": 180,
        }
        context["subject_params"] = {
            "company": company.name,
            "last_day": "2026-06-01",
            "deadline": "2026-12-20",
            "days": 180,
        }
    reply_to = context.pop("reply_to", None)
    mailer.send_templated(
        CUSTOMER_EMAIL,
        kind,
        locale,
        reply_to=reply_to,
        from_name=common["from_name"],
        **context,
    )
    meant.update(
        reply_to=reply_to,
        from_name=common["from_name"],
        params=context.get("subject_params", {}),
    )
    return meant


def _sent_since(since: int) -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID][get_settings().region]
    return [m.raw_data for m in backend.sent_messages[since:] if getattr(m, "raw_data", None)]


def _sent_count() -> int:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return len(ses_backends[DEFAULT_ACCOUNT_ID][get_settings().region].sent_messages)


def header_problems(raw: bytes, meant: dict) -> list[str]:
    """What does not read back as meant, with either parser."""
    sender = get_settings().mail_sender
    want = {
        "From": [(mail.display_name(meant["from_name"]) or "CheckOS", sender)],
        "To": [(mail.display_name(meant["to_name"]), delivery.address_key(meant["to"]))],
        "Reply-To": [("", delivery.address_key(meant["reply_to"]))] if meant["reply_to"] else [],
    }
    problems = []
    std = email.message_from_bytes(raw, policy=default)
    got_std = {
        h: [(a.display_name, a.addr_spec) for a in std[h].addresses] if std[h] else [] for h in want
    }
    fast = fast_mail_parser.parse_email(raw)
    got_fast = {
        "From": [(a.display_name or "", a.address) for a in [fast.from_] if a],
        "To": [(a.display_name or "", a.address) for a in fast.to],
        "Reply-To": [(a.display_name or "", a.address) for a in fast.reply_to],
    }
    for name, parsed in (("stdlib", got_std), ("fast-mail-parser", got_fast)):
        if parsed != want:
            problems.append(f"{name}: {parsed} != {want}")
    subject = mailer.subject_for(meant["kind"], meant["locale"], meant["params"])
    if str(std["Subject"]) != subject or fast.subject != subject:
        problems.append(f"subject {str(std['Subject'])!r} / {fast.subject!r} != {subject!r}")
    if not std["Date"] or not std["Message-ID"]:
        problems.append("no Date or Message-ID")
    if std["Content-Language"] != meant["locale"]:
        problems.append(f"Content-Language {std['Content-Language']}")
    for part in std.iter_parts():
        if part["Content-Transfer-Encoding"] not in ("quoted-printable", "base64"):
            problems.append(f"{part.get_content_type()} is {part['Content-Transfer-Encoding']}")
    return problems


@pytest.fixture(scope="module")
def spamd() -> Iterator[int]:
    """A local spamd (Debian's SpamAssassin, -L: no network tests) on a free loopback port."""
    daemon = shutil.which("spamd")
    if not daemon or not shutil.which("spamc"):
        pytest.fail("SpamAssassin is not installed: run `make spamassassin`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [daemon, "-L", f"--listen=127.0.0.1:{port}", "--max-children=1"]
    command += ["--min-children=1", "--syslog=stderr"]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        else:
            pytest.fail("spamd did not start")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def spam_score(port: int, raw: bytes) -> float:
    """One message through spamc (no network rules: spamd runs with -L)."""
    result = subprocess.run(
        ["spamc", "-d", "127.0.0.1", "-p", str(port), "-c"],
        input=raw,
        capture_output=True,
        timeout=120,
    )
    match = re.match(rb"(-?[\d.]+)/", result.stdout)
    if not match:
        pytest.fail(f"spamc gave no score: {result.stdout[:200]!r} {result.stderr[:200]!r}")
    return float(match.group(1))


_WIDTHS_SCRIPT = """
import json, sys
from playwright.sync_api import sync_playwright
chromium, width, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
htmls = json.load(sys.stdin)
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=flags)
    page = browser.new_page(viewport={"width": width, "height": 800})
    widths = []
    for html in htmls:
        page.set_content(html, wait_until="domcontentloaded")
        widths.append(int(page.evaluate(
            "Math.max(document.documentElement.scrollWidth,"
            " document.body ? document.body.scrollWidth : 0)")))
    browser.close()
print(json.dumps(widths))
"""


def html_widths(htmls: list[str]) -> list[int]:
    """Each HTML part rendered on one 390 px wide page, in sequence: its scroll width.

    In a process of its own: a browser test in the same pytest worker may hold
    Playwright's sync API (one per process) for the whole session.
    """
    import json
    import subprocess
    import sys

    from tests.e2e.conftest import CHROMIUM_FLAGS

    run = subprocess.run(
        [sys.executable, "-c", _WIDTHS_SCRIPT, CHROMIUM, str(PHONE_WIDTH), *CHROMIUM_FLAGS],
        input=json.dumps(htmls),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_every_message_arrives_right(aws, spamd: int) -> None:
    company, account = _company()
    order = orders.register_order(
        company,
        staff_actor(account),
        order_form(
            customer_name=CUSTOMER,
            customer_email=CUSTOMER_EMAIL,
            problem=LONG_PROBLEM,
            service_type="Geladeira frost-free; gás R-600a <urgente>",
            brand="Brastemp",
            model="BRM" + "X" * 60,
        ),
        {},
    )
    since = _sent_count()
    meant = []
    for kind in KINDS:
        for locale in LOCALES:
            for logo in (True, False):
                meant.append({**_send(kind, locale, logo, company, order), "kind": kind})
                meant[-1]["locale"] = locale
    raws = [raw.encode("utf-8") for raw in _sent_since(since)]
    dump = os.environ.get("CHECKOS_MAIL_DUMP")  # a folder: keep the messages to look at
    if dump:
        for index, (raw, m) in enumerate(zip(raws, meant, strict=False)):
            Path(dump, f"{index:02d}-{m['kind']}-{m['locale']}.eml").write_bytes(raw)
    failures = {
        f"{m['kind']}/{m['locale']}": problems
        for raw, m in zip(raws, meant, strict=False)
        if (problems := header_problems(raw, m))
    }
    scores = [spam_score(spamd, raw) for raw in raws]
    htmls = [
        email.message_from_bytes(raw, policy=default)
        .get_body(preferencelist=("html",))
        .get_content()
        for raw in raws
    ]
    widths = html_widths(htmls)
    overflow = [
        f"{m['kind']}/{m['locale']}: {w}px" for m, w in zip(meant, widths, strict=False) if w > 390
    ]
    spammy = [
        f"{m['kind']}/{m['locale']}: {s}"
        for m, s in zip(meant, scores, strict=False)
        if s > SPAM_LIMIT
    ]
    print(
        report(
            "mail",
            kinds=len({m["kind"] for m in meant}),
            messages=len(raws),
            header_roundtrip_failures=len(failures),
            max_spam_score=max(scores) if scores else "none",
            overflow=len(overflow),
        )
    )
    assert len(raws) == len(meant) == len(KINDS) * len(LOCALES) * 2
    assert len(scores) == len(raws), "SpamAssassin did not score every message"
    assert len(widths) == len(raws)
    assert not failures, list(failures.items())[:3]
    assert not spammy, spammy[:5]
    assert not overflow, overflow[:5]
