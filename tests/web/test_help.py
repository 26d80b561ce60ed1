"""Help center, About and System Policy: public, cacheable, zero DynamoDB requests, real figures."""

from __future__ import annotations

import dataclasses
import re
from html import unescape

import pytest

from chalicelib.config import get_settings
from chalicelib.db.accounts import User
from chalicelib.domain import aging, logos
from chalicelib.i18n import LOCALES, catalog
from chalicelib.services import help as articles
from chalicelib.services import intake
from chalicelib.services.users import set_user_locale
from chalicelib.web.help import CACHE_CONTROL
from chalicelib.web.intake import MIN_SIZE
from chalicelib.web.pages import SETTINGS_HELP
from tests.web.factories import ids_of, sign_up
from tests.web.session import WebSession

IMAGE_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
PAGES = ["/help", "/about", "/policy", "/help?q=logo"] + [
    f"/help/{a.slug}" for a in articles.ARTICLES
]


def _text(body: str) -> str:
    """The visible text of a page, tags dropped and whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _get(client, path: str, locale: str = "en", cookie: str | None = None):
    headers = {"Accept-Language": locale}
    if cookie:
        headers["Cookie"] = cookie
    return client.http.get(path, headers=headers)


def test_every_help_page_opens_in_every_language(client):
    for locale in LOCALES:
        for path in PAGES:
            response = _get(client, path, locale)
            assert response.status_code == 200, (path, locale)
            assert response.headers["Content-Language"] == locale
            body = response.body.decode()
            assert f'<html lang="{locale}">' in body
            # A missing key would show itself (the key) and a missing figure its {placeholder}.
            assert "help." not in _text(body), (path, locale)
            assert not re.search(r"\{\w+\}", _text(body)), (path, locale)


def test_help_pages_cost_zero_dynamodb_requests_for_visitors(client, budget):
    with budget:
        for path in PAGES:
            assert client.http.get(path).status_code == 200, path
    assert budget.dynamodb_requests == 0
    # A signed-in user's help page reads the session, as any page of theirs does.
    tab = sign_up(client)
    with budget:
        tab.get("/help")
    assert 1 <= budget.dynamodb_requests <= 2


def test_help_pages_are_cacheable_per_language_and_personal_to_nobody(client):
    for path in PAGES:
        response = client.http.get(path)
        assert response.headers["Cache-Control"] == CACHE_CONTROL
        vary = {part.strip().lower() for part in response.headers["Vary"].split(",")}
        assert {"accept-language", "cookie"} <= vary
        assert "Set-Cookie" not in response.headers and "set-cookie" not in response.headers
        body = response.body.decode()
        assert "csrf_token" not in body, path
        assert 'href="/login"' in body, path


def test_signed_in_help_shows_the_app_navigation_in_the_profile_language(client):
    tab = sign_up(client, company_name="Oficina Sigilosa")
    company_id, user_id = ids_of(tab)
    set_user_locale(User.get(*User.key(company_id, user_id)), "pt-BR")
    tab.accept_language = "en"  # the browser says English; the profile says Portuguese
    tab.cookies.pop("lang", None)
    for path in PAGES:
        response = tab.get(path)
        assert response.status_code == 200, path
        body = response.body.decode()
        assert '<html lang="pt-BR">' in body, path
        assert 'action="/logout"' in body and 'href="/orders"' in body, path
        assert 'href="/login"' not in body, path
        assert "Oficina Sigilosa" in body, path
        assert response.headers["Cache-Control"] == "no-store", path


def test_language_follows_the_cookie_then_accept_language(client):
    english = _get(client, "/help/logo", "en").body.decode()
    spanish = _get(client, "/help/logo", "es").body.decode()
    chosen = _get(client, "/help/logo", "en", cookie="lang=pt-BR").body.decode()
    assert "Your logo" in english
    assert "Su logotipo" in spanish
    assert "Seu logotipo" in chosen


def test_the_language_chooser_of_a_cached_page_sets_the_cookie_and_goes_back(client, budget):
    page = _get(client, "/help/logo").body.decode()
    assert 'action="/help/language"' in page and 'method="get"' in page
    with budget:
        response = client.http.get("/help/language?locale=es&next=/help/logo")
    assert budget.dynamodb_requests == 0
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/help/logo"
    assert "lang=es" in str(response.headers.get("Set-Cookie"))
    assert response.headers["Cache-Control"] == "no-store"
    outside = client.http.get("/help/language?locale=es&next=https://evil.example/")
    assert outside.headers["Location"] == "/help"


def test_articles_quote_the_constants_the_code_uses(client):
    quota = get_settings().free_plan_monthly_orders
    assert f"up to {quota} new orders per calendar month" in _text(
        _get(client, "/help/free-plan").body.decode()
    )
    charts = _text(_get(client, "/help/dashboard-charts").body.decode())
    assert f"Red: registered {aging.RED_DAYS} or more days ago" in charts
    assert f"Orange: registered {aging.ORANGE_DAYS} to {aging.RED_DAYS - 1} days ago" in charts
    logo = _text(_get(client, "/help/logo").body.decode())
    assert f"up to {logos.MAX_UPLOAD_BYTES // (1024 * 1024)} MB" in logo
    assert f"{logos.MAX_SIDE}×{logos.MAX_SIDE}" in logo
    form = _text(_get(client, "/help/intake-form").body.decode())
    assert f"Below {MIN_SIZE}×{MIN_SIZE} pixels" in form
    hours = int(intake.PENDING_LIFETIME.total_seconds() // 3600)
    assert f"for {hours} hours" in form
    company = _text(_get(client, "/help/company-info").body.decode())
    assert f"for {get_settings().inactivity_days} days" in company
    assert f"{get_settings().base_url}/c/" in company


def test_a_changed_setting_changes_the_help(client, monkeypatch):
    changed = dataclasses.replace(get_settings(), free_plan_monthly_orders=37)
    monkeypatch.setattr("chalicelib.services.help.get_settings", lambda: changed)
    assert "up to 37 new orders per calendar month" in _text(
        _get(client, "/help/free-plan").body.decode()
    )


def test_policy_states_lifetimes_and_data_rights(client):
    policy = _get(client, "/policy").body.decode()
    text = _text(policy)
    settings = get_settings()
    assert f"A sign-in: up to {settings.session_ttl_hours} hours" in text
    assert f"ends after {settings.session_idle_minutes} minutes without use" in text
    assert f"set inactive (warned {settings.inactivity_warning_days} days before)" in text
    assert 'id="data"' in policy and 'href="/settings/data"' in policy


@pytest.mark.parametrize(
    ("locale", "query", "expected"),
    [
        ("en", "logo", "logo"),
        ("en", "QUOTA", "free-plan"),
        ("es", "código formulario", "intake-form"),
        ("es", "logotipo", "logo"),
        ("pt-BR", "parceria suspensa", "partnerships"),
        ("pt-BR", "vermelho laranja", "dashboard-charts"),
    ],
)
def test_search_finds_the_article_in_the_visitors_language(client, locale, query, expected):
    body = _get(client, f"/help?q={query}", locale).body.decode()
    results = re.findall(r'<li class="card">\s*<a href="/help/([a-z-]+)', body)
    assert results and results[0] == expected, (query, results)


def test_search_without_match_says_so_and_escapes_the_query(client, budget):
    with budget:
        body = _get(client, "/help?q=%3Cb%3Ezzqxw").body.decode()
    assert budget.dynamodb_requests == 0
    assert 'id="help-none"' in body
    assert "<b>zzqxw" not in body and "&lt;b&gt;zzqxw" in body


def test_unknown_article_answers_the_404_page(client):
    response = _get(client, "/help/no-such-topic")
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"


def test_screenshot_route_serves_only_existing_webp_names(client, tmp_path, monkeypatch):
    monkeypatch.setattr(articles, "SHOTS_DIR", tmp_path)
    (tmp_path / "dashboard-desktop.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    # Browsers ask for images with image/avif first (a binary type of the app).
    found = client.http.get("/help/img/dashboard-desktop.webp", headers={"Accept": IMAGE_ACCEPT})
    assert found.status_code == 200
    assert found.headers["Content-Type"] == "image/webp"
    for name in ("absent.webp", "..%2Fapp.py", "dashboard-desktop.png"):
        missing = client.http.get(f"/help/img/{name}", headers={"Accept": IMAGE_ACCEPT})
        assert missing.status_code == 404


def test_an_article_without_screenshots_shows_no_image(client, tmp_path, monkeypatch):
    monkeypatch.setattr(articles, "SHOTS_DIR", tmp_path)
    body = _get(client, "/help/dashboard-charts").body.decode()
    assert "<img" not in body.split('id="main"', 1)[1]
    (tmp_path / "dashboard-aging.webp").write_bytes(b"RIFF")
    body = _get(client, "/help/dashboard-charts").body.decode()
    assert 'src="/help/img/dashboard-aging.webp"' in body


def test_every_page_footer_links_help_about_policy_and_a_language_chooser(client):
    tab = sign_up(client)
    for body in (tab.get("/").body.decode(), _get(client, "/login").body.decode()):
        for href in ('href="/help"', 'href="/about"', 'href="/policy"'):
            assert href in body
        assert 'id="lang-select"' in body
        assert 'id="community-link"' not in body


def test_the_community_link_appears_when_configured(client, monkeypatch):
    changed = dataclasses.replace(get_settings(), community_url="https://forum.example/checkos")
    monkeypatch.setattr("chalicelib.web.help.get_settings", lambda: changed)
    body = _get(client, "/about").body.decode()
    assert 'id="community-link" href="https://forum.example/checkos"' in body or (
        'href="https://forum.example/checkos" rel="noopener" id="community-link"' in body
    )


def test_settings_hub_and_pages_link_their_help(client):
    tab = sign_up(client)
    hub = tab.get("/settings").body.decode()
    for target in SETTINGS_HELP.values():
        if target.startswith("/help/"):
            assert f'href="{target}"' in hub
    for path, article in [
        ("/", "/help/dashboard-charts#aging"),
        ("/orders", "/help/search-export"),
        ("/partners", "/help/partnerships"),
        ("/settings/company", "/help/company-info"),
        ("/settings/company/logo", "/help/logo"),
        ("/settings/users", "/help/team#users"),
        ("/settings/fields", "/help/team#fields"),
        ("/settings/follow-snippet", "/help/follow-snippet"),
        ("/settings/intake", "/help/intake-form"),
    ]:
        assert f'class="help-link" href="{article}"' in tab.get(path).body.decode(), path


def test_every_article_key_exists_in_the_three_languages():
    entries = catalog()
    for article in (*articles.ARTICLES, *articles.PAGES.values()):
        for key in articles.catalogue_keys(article):
            assert key in entries, key
            assert all(entries[key].get(locale) for locale in LOCALES), key


def test_the_help_center_lists_every_article(client):
    tab = WebSession(client, accept_language="es")
    body = tab.get("/help").body.decode()
    assert body.count('<li class="card"><a href="/help/') == len(articles.ARTICLES)
