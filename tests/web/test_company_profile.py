"""Company settings: profile edits, errors, roles, slug, optimistic locking, e-mail, status."""

from __future__ import annotations

import secrets

import pytest

from chalicelib.db.accounts import Company, Slug
from chalicelib.services import companies
from chalicelib.services.companies import CompanyInactive, require_active
from tests.web.company_factories import company_of, save_settings, settings_form, staff_member
from tests.web.factories import code_in, last_mail_to, mails_to, sign_up, unique_email


def test_admin_edits_the_profile_and_sees_it_saved(client):
    tab = sign_up(client)
    response = save_settings(
        tab,
        name="Oficina do Zé",
        website="https://oficina.example.com.br",
        description="Consertos de celulares e notebooks.\nSegunda a sábado.",
        city="Campinas",
        state="SP",
        country="Brasil",
        locale="pt-BR",
    )
    assert response.status_code == 303, tab.text()
    assert response.headers["Location"] == "/settings/company"
    tab.get("/settings/company")
    assert "Company info saved." in tab.text()
    company = company_of(tab)
    assert (company.name, company.city, company.state, company.country) == (
        "Oficina do Zé",
        "Campinas",
        "SP",
        "Brasil",
    )
    assert company.website == "https://oficina.example.com.br"
    assert company.locale == "pt-BR"
    assert company.description.endswith("Segunda a sábado.")
    assert 'value="Oficina do Zé"' in tab.text()


def test_errors_are_shown_beside_fields_and_nothing_typed_is_lost(client):
    tab = sign_up(client)
    before = company_of(tab)
    response = save_settings(
        tab,
        name="",
        city="Porto Alegre",
        website="javascript:alert(1)",
        email="not-an-email",
        slug="Bad Slug!",
        phone="12",
        description="x" * 1001,
    )
    assert response.status_code == 422
    body = tab.text()
    assert 'id="e-name"' in body and "This field is required." in body
    assert 'id="e-website"' in body and "starting with http:// or https://" in body
    assert 'id="e-email"' in body
    assert 'id="e-slug"' in body and "lowercase letters, digits and hyphens" in body
    assert 'id="e-phone"' in body and "at least 6 digits" in body
    assert 'id="e-description"' in body and "at most 1000 characters" in body
    assert 'value="Porto Alegre"' in body
    assert 'value="javascript:alert(1)"' in body
    assert 'value="Bad Slug!"' in body
    after = company_of(tab)
    assert after.city == before.city and after.version == before.version


@pytest.mark.parametrize(
    "website",
    ["ftp://example.com", "example.com", "https://localhost", "https://user:pw@example.com"],
)
def test_website_must_be_a_full_http_url(client, website):
    tab = sign_up(client)
    assert save_settings(tab, website=website).status_code == 422
    assert "starting with http:// or https://" in tab.text()


def test_staff_cannot_see_or_change_company_settings(client):
    admin = sign_up(client)
    staff = staff_member(client, admin)
    assert staff.get("/settings/company").status_code == 403
    assert "Only administrators" in staff.text()
    staff.get("/")
    form = companies.profile_values(company_of(admin))
    form["name"] = "Hijacked"
    response = staff.post("/settings/company", form)
    assert response.status_code == 403
    assert "Only administrators" in staff.text()
    assert company_of(admin).name != "Hijacked"
    assert staff.get("/settings/company/logo").status_code == 403
    staff.get("/")
    assert staff.post("/settings/company/reactivate", {}).status_code == 403


def test_settings_page_costs_at_most_three_dynamodb_requests(client, budget):
    tab = sign_up(client)
    tab.get("/")
    with budget:
        response = tab.get("/settings/company")
    assert response.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    assert [c.operation for c in budget.dynamodb] == ["BatchGetItem"]


def test_changing_the_slug_moves_the_public_address(client):
    tab = sign_up(client)
    old = company_of(tab).slug
    new = f"new-address-{secrets.token_hex(3)}"
    assert client.http.get(f"/c/{old}").status_code == 200
    assert save_settings(tab, slug=new.upper()).status_code == 303
    company = company_of(tab)
    assert company.slug == new
    assert client.http.get(f"/c/{old}").status_code == 404
    assert client.http.get(f"/c/{new}").status_code == 200
    assert Slug.get(*Slug.key(new)).company_id == company.company_id
    with pytest.raises(Slug.DoesNotExist):  # the old Slug item is gone: reusable by anyone
        Slug.get(*Slug.key(old))


def test_a_slug_used_by_another_company_is_refused_and_nothing_changes(client):
    first = sign_up(client)
    second = sign_up(client)
    taken = company_of(first).slug
    before = company_of(second)
    response = save_settings(second, slug=taken, city="Recife")
    assert response.status_code == 422
    assert "Another company already uses this address" in second.text()
    assert 'value="Recife"' in second.text()
    after = company_of(second)
    assert after.slug == before.slug and after.city == before.city
    assert after.version == before.version
    assert Slug.get(*Slug.key(before.slug)).company_id == before.company_id
    assert Slug.get(*Slug.key(taken)).company_id == company_of(first).company_id


def test_two_admins_editing_at_once_cannot_overwrite_each_other(client):
    first = sign_up(client)
    second_tab_form = settings_form(first)  # another admin loads the page now...
    assert save_settings(first, city="Salvador").status_code == 303  # ...first saves
    second_tab_form.update(city="Fortaleza", description="Typed by the second admin")
    response = first.post("/settings/company", second_tab_form)
    assert response.status_code == 409
    body = first.text()
    assert "Someone else changed this company" in body
    assert 'value="Fortaleza"' in body and "Typed by the second admin" in body
    assert 'href="/settings/company"' in body
    assert company_of(first).city == "Salvador"
    # Saving the same stale form again still cannot overwrite.
    assert first.post("/settings/company", second_tab_form).status_code == 409
    assert company_of(first).city == "Salvador"


def test_version_conflict_between_read_and_write_is_caught_by_the_transaction(client):
    """The race the pre-check cannot see: another write lands after this request loaded."""
    tab = sign_up(client)
    company = company_of(tab)
    form = companies.profile_values(company)
    stale = Company.get(*Company.key(company.company_id))
    company.update(actions=[Company.city.set("Natal")])  # someone else, right now
    form["city"] = "Belém"
    with pytest.raises(companies.ProfileChanged):
        companies.update_profile(stale, form, "en")
    assert company_of(tab).city == "Natal"


def test_email_change_keeps_the_old_address_until_the_code_is_validated(client):
    tab = sign_up(client)
    old = company_of(tab).email
    new = unique_email("new")
    response = save_settings(tab, email=new)
    assert response.status_code == 303
    company = company_of(tab)
    assert company.email == old and company.email_validated is True
    assert company.pending_email == new
    tab.get("/settings/company")
    body = tab.text()
    assert "We sent a code to" in body
    assert f"{new} is waiting for validation" in body
    assert 'href="/verify-email"' in body
    assert f'value="{new}"' in body
    # Saving other fields again sends no second code.
    sent = len(mails_to(new))
    assert save_settings(tab, city="Manaus").status_code == 303
    assert len(mails_to(new)) == sent
    assert company_of(tab).pending_email == new
    tab.get("/verify-email")
    assert new in tab.text()
    assert tab.post("/verify-email", {"code": code_in(last_mail_to(new))}).status_code == 303
    company = company_of(tab)
    assert (company.email, company.pending_email, company.email_validated) == (new, None, True)


def test_typing_the_current_email_back_cancels_a_pending_change(client):
    tab = sign_up(client)
    old = company_of(tab).email
    save_settings(tab, email=unique_email("typo"))
    assert company_of(tab).pending_email is not None
    assert save_settings(tab, email=old).status_code == 303
    assert company_of(tab).pending_email is None
    assert company_of(tab).email == old


def test_inactive_company_shows_a_banner_and_an_admin_reactivates_it(client):
    admin = sign_up(client)
    staff = staff_member(client, admin)
    assert save_settings(admin, status="inactive").status_code == 303
    assert company_of(admin).status == "inactive"
    admin.get("/")
    assert 'id="inactive-banner"' in admin.text()
    assert "This company is inactive" in admin.text()
    assert 'action="/settings/company/reactivate"' in admin.text()
    staff.get("/")
    assert 'id="inactive-banner"' in staff.text()
    assert "Ask an administrator" in staff.text()
    assert 'action="/settings/company/reactivate"' not in staff.text()
    slug = company_of(admin).slug
    assert client.http.get(f"/c/{slug}").status_code == 404
    response = admin.post("/settings/company/reactivate", {"next": "/"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert company_of(admin).status == "active"
    admin.get("/")
    assert 'id="inactive-banner"' not in admin.text()
    assert "The company is active again." in admin.text()
    assert client.http.get(f"/c/{slug}").status_code == 200


def test_require_active_refuses_changes_of_an_inactive_company(client):
    tab = sign_up(client)
    company = company_of(tab)
    require_active(company)  # active: no error
    save_settings(tab, status="inactive")
    with pytest.raises(CompanyInactive) as refused:
        require_active(company_of(tab))
    assert refused.value.status == 403
    from chalicelib.i18n import translate

    assert "read-only" in translate("es", refused.value.key) or "lectura" in translate(
        "es", refused.value.key
    )


def test_home_page_links_missing_fields_to_the_settings_anchors(client):
    tab = sign_up(client)
    tab.get("/")
    assert 'href="/settings/company#f-website"' in tab.text()
    assert 'href="/settings/company#f-logo"' in tab.text()
    tab.get("/settings/company")
    for name in (*companies.PROFILE_FIELDS, "logo"):
        assert f'id="f-{name}"' in tab.text(), name
    save_settings(
        tab,
        website="https://example.com",
        description="We fix things.",
        city="Lima",
        state="Lima",
        country="Peru",
    )
    tab.get("/")
    assert 'href="/settings/company#f-website"' not in tab.text()


def test_settings_page_is_translated(client):
    tab = sign_up(client, locale="pt-BR")
    tab.get("/settings/company")
    assert "Dados da empresa" in tab.text()
    assert "Endereço da página pública" in tab.text()
