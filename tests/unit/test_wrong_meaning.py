"""Strings that read as something else to a customer (issue 32, point 4) say what they mean."""

from __future__ import annotations

import re

import pytest

from chalicelib.i18n import translate

# A group noun as the role gives «convidou você … como Equipe» / «como Personal».
GROUP_NOUNS = {"es": {"personal", "equipo"}, "pt-BR": {"equipe", "time", "pessoal"}}


@pytest.mark.parametrize("locale", ["es", "pt-BR"])
def test_the_email_footer_says_the_software_is_free_not_the_order(locale):
    footer = translate(locale, "email.footer")
    # «órdenes de servicio gratuitas» / «ordens de serviço gratuitas» promise a free repair.
    assert not re.search(r"(órdenes|ordens) de servi\w+ gratuit", footer), footer
    assert re.search(r"sistema gratuito", footer), footer


def test_the_english_footer_does_not_promise_free_orders():
    assert "free service orders" not in translate("en", "email.footer")


@pytest.mark.parametrize("locale", ["es", "pt-BR"])
def test_the_staff_role_names_a_person_in_the_invitation(locale):
    role = translate(locale, "users.role.staff")
    assert role.casefold() not in GROUP_NOUNS[locale]
    assert role == "Colaborador"
    intro = translate(locale, "email.invitation.intro", inviter="Ana", company="Taller", role=role)
    assert "Colaborador" in intro and not re.search(r"como (Equipe|Personal)\b", intro)


def test_spanish_notifications_count_is_a_counter_not_an_account():
    for key in ("help.notifications.summary", "help.notifications.bell.p2"):
        assert not re.search(r"\bcuenta\b", translate("es", key)), key
    assert "contador" in translate("es", "help.notifications.bell.p2")
