"""The web shell: pages, error pages, headers, languages, assets."""

from __future__ import annotations

from tests.web.session import WebSession


def test_landing_page_renders_in_english_by_default(client):
    response = client.http.get("/")
    assert response.status_code == 200
    assert "Run your service orders in one place" in response.body.decode()


def test_browser_language_picks_spanish_then_user_choice_wins(client):
    spanish = client.http.get("/", headers={"Accept-Language": "es-AR,es;q=0.9,en;q=0.5"})
    assert "Gestione sus órdenes de servicio" in spanish.body.decode()
    chosen = client.http.get("/", headers={"Accept-Language": "es", "Cookie": "lang=pt-BR"})
    assert "Gerencie suas ordens de serviço" in chosen.body.decode()
    assert chosen.headers["Content-Language"] == "pt-BR"


def test_language_form_sets_cookie_and_returns(client):
    tab = WebSession(client)
    tab.get("/")
    response = tab.post("/language", {"locale": "es", "next": "/"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert tab.cookies["lang"] == "es"
    assert "Gestione sus órdenes" in tab.get("/").body.decode()


def test_unknown_page_is_a_translated_404(client):
    response = client.http.get("/no-such-page", headers={"Accept-Language": "pt-BR"})
    assert response.status_code == 404
    assert "Página não encontrada" in response.body.decode()


def test_state_changing_form_without_csrf_is_403(client):
    response = client.http.post(
        "/language",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="locale=es",
    )
    assert response.status_code == 403


def test_every_response_carries_security_headers(client):
    for path in ("/", "/no-such-page", "/static/app.css", "/healthz"):
        headers = client.http.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_static_assets_are_served_by_the_app_with_long_cache(client):
    response = client.http.get("/static/app.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert "immutable" in response.headers["Cache-Control"]
    assert client.http.get("/static/app.py").status_code == 404


def test_pages_reference_no_external_asset(client):
    body = client.http.get("/").body.decode()
    for marker in ('src="http', 'href="http', "//cdn"):
        assert marker not in body


def test_an_unexpected_error_is_a_translated_500_page_without_details(client, monkeypatch):
    from chalicelib.services import orders
    from tests.web.factories import sign_up

    tab = sign_up(client, locale="es")

    def broken(*args, **kwargs):
        raise RuntimeError("database exploded: secret detail")

    monkeypatch.setattr(orders, "list_orders", broken)
    response = tab.get("/orders")
    assert response.status_code == 500
    body = tab.text()
    assert "Algo salió mal" in body
    assert "secret detail" not in body and "Traceback" not in body
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
