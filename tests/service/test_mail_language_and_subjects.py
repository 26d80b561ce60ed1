"""Each e-mail in its recipient's language; subjects keep the order number, whatever the name."""

from __future__ import annotations

import email
from email.policy import default

from chalicelib.db.accounts import Company, User
from chalicelib.services import orders, password_reset
from tests.service.factories import new_company, order_form, staff_actor
from tests.web.factories import last_mail_to, unique_email

LONG_NAME = "Assistência Técnica Refrigeração Polo Norte " * 3  # 132 characters


def test_a_password_reset_is_written_in_the_accounts_language_not_the_browsers(aws):
    account = new_company("Oficina Azul")
    user = account.user
    User(*User.key(user.company_id, user.user_id)).update(actions=[User.locale.set("pt-BR")])
    password_reset.request_password_reset(user.email, "es")  # asked from a Spanish browser
    sent = last_mail_to(user.email)
    assert "Redefina sua senha do CheckOS" in sent.subject, sent.subject
    raw = email.message_from_string(sent.raw, policy=default)
    assert raw["Content-Language"] == "pt-BR"


def test_a_long_company_name_is_cut_in_the_subject_never_the_order_number(aws):
    account = new_company(LONG_NAME.strip()[:120])
    account.company.update(actions=[Company.email_validated.set(True)])
    customer = unique_email("customer")
    order = orders.register_order(
        account.company, staff_actor(account), order_form(customer_email=customer), {}
    )
    sent = last_mail_to(customer)
    assert f"#{order.number}" in sent.subject, sent.subject
    assert sent.subject.index(f"#{order.number}") < 70, sent.subject
    assert "…" in sent.subject
