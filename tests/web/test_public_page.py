"""The public company page: content, meta tags, canonical URL, JSON-LD, cost and 404s."""

from __future__ import annotations

import json
import re

from chalicelib.services.companies import script_json
from tests.web.company_factories import company_of, image_bytes, save_settings, upload_logo
from tests.web.factories import sign_up
from tests.web.session import WebSession


def _ld_json(body: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', body, re.S)
    assert match, body
    return json.loads(match.group(1))


def _filled_company(client) -> WebSession:
    tab = sign_up(client, company_name="Conserta Já")
    assert (
        save_settings(
            tab,
            description="Conserto de celulares, tablets e notebooks.\nAtendimento em até 24 h.",
            website="https://consertaja.example.com.br",
            city="Belo Horizonte",
            state="MG",
            country="Brasil",
            phone="+55 31 3333-4444",
        ).status_code
        == 303
    )
    return tab


def test_public_page_shows_the_profile_with_meta_canonical_and_json_ld(client):
    tab = _filled_company(client)
    assert upload_logo(tab, image_bytes()).status_code == 303
    company = company_of(tab)
    response = client.http.get(f"/c/{company.slug}")
    assert response.status_code == 200
    body = response.body.decode()
    assert "<title>Conserta Já · Electronics repair · Belo Horizonte, MG, Brasil</title>" in body
    assert (
        '<meta name="description" content="Conserto de celulares, tablets e notebooks. '
        'Atendimento em até 24 h.">' in body
    )
    canonical = f"http://testserver/c/{company.slug}"
    assert f'<link rel="canonical" href="{canonical}">' in body
    assert "Belo Horizonte, MG, Brasil" in body
    assert 'href="tel:+553133334444"' in body
    assert 'href="https://consertaja.example.com.br"' in body
    assert f'href="mailto:{company.email}"' in body  # validated: shown
    logo_path = f"/logo/{company.company_id}/{company.logo_key.rsplit('/', 1)[-1]}"
    assert f'src="{logo_path}"' in body
    data = _ld_json(body)
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "LocalBusiness"
    assert data["name"] == "Conserta Já"
    assert data["url"] == canonical
    assert data["telephone"] == "+55 31 3333-4444"
    assert data["email"] == company.email
    assert data["areaServed"] == "São Paulo"
    assert data["sameAs"] == ["https://consertaja.example.com.br"]
    assert data["logo"] == "http://testserver" + logo_path
    assert data["address"] == {
        "@type": "PostalAddress",
        "addressLocality": "Belo Horizonte",
        "addressRegion": "MG",
        "addressCountry": "Brasil",
    }


def test_unvalidated_email_is_not_published(client):
    tab = sign_up(client, validate=False)
    company = company_of(tab)
    body = client.http.get(f"/c/{company.slug}").body.decode()
    assert company.email not in body
    assert "email" not in _ld_json(body)


def test_meta_description_falls_back_to_type_and_area(client):
    tab = sign_up(client, company_name="Plain Co")
    body = client.http.get(f"/c/{company_of(tab).slug}").body.decode()
    assert '<meta name="description" content="Plain Co: Electronics repair in São Paulo.">' in body


def test_text_cannot_break_out_of_the_json_ld_script(client):
    tab = sign_up(client)
    attack = "</script><script>alert(1)</script> <!-- & \u2028"
    assert save_settings(tab, description=attack).status_code == 303
    body = client.http.get(f"/c/{company_of(tab).slug}").body.decode()
    script = re.search(r'<script type="application/ld\+json">(.*?)</script>', body, re.S)
    assert script and "<" not in script.group(1)
    assert _ld_json(body)["description"].startswith("</script><script>")
    assert "<script>alert(1)" not in body
    assert json.loads(script_json({"a": "</script>"})) == {"a": "</script>"}


def test_inactive_company_and_unknown_slug_answer_the_404_page(client):
    tab = sign_up(client)
    slug = company_of(tab).slug
    save_settings(tab, status="inactive")
    for path in (f"/c/{slug}", "/c/no-such-company-here", "/c/..", "/c/UPPER%20case"):
        response = client.http.get(path)
        assert response.status_code == 404, path
        assert "Page not found" in response.body.decode()


def test_public_page_costs_two_get_items(client, budget):
    tab = sign_up(client)
    slug = company_of(tab).slug
    with budget:
        response = client.http.get(f"/c/{slug}")
    assert response.status_code == 200
    assert [c.operation for c in budget.dynamodb] == ["GetItem", "GetItem"]


def test_public_page_is_translated_for_the_visitor(client):
    tab = _filled_company(client)
    slug = company_of(tab).slug
    body = client.http.get(f"/c/{slug}", headers={"Accept-Language": "es"}).body.decode()
    assert "Contacto" in body and "Atiende en São Paulo" in body
    assert '<html lang="es">' in body
