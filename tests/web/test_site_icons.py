"""The site icon answers everywhere: favicon.ico, the apple-touch-icon and the web app manifest."""

from __future__ import annotations

import io
import json
from urllib.parse import urljoin

from PIL import Image

from tests.web.factories import sign_up


def test_favicon_and_touch_icon_are_real_images(client):
    for path, kind, size in (
        ("/favicon.ico", "image/x-icon", 48),
        ("/apple-touch-icon.png", "image/png", 180),
    ):
        answer = client.http.get(path, headers={"Accept": "image/*,*/*"})
        assert answer.status_code == 200, path
        assert answer.headers["Content-Type"] == kind
        image = Image.open(io.BytesIO(answer.body))
        assert image.size == (size, size), path


MANIFEST = "/manifest.webmanifest"


def test_the_manifest_names_the_app_and_points_at_icons_that_answer(client):
    answer = client.http.get(MANIFEST)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/manifest+json"
    manifest = json.loads(answer.body)
    # Relative to the manifest's own URL, so the app installs under a stage prefix too.
    assert manifest["name"] == "CheckOS" and urljoin(MANIFEST, manifest["start_url"]) == "/"
    assert manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        found = client.http.get(urljoin(MANIFEST, icon["src"]), headers={"Accept": "*/*"})
        assert found.status_code == 200, icon["src"]
        width, height = Image.open(io.BytesIO(found.body)).size
        assert f"{width}x{height}" == icon["sizes"]
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes


def test_every_layout_links_the_icons_and_the_staff_pages_the_manifest(client):
    landing = client.http.get("/").body.decode()
    assert 'href="/favicon.ico"' in landing and 'rel="apple-touch-icon"' in landing
    assert 'rel="manifest"' in landing
    tab = sign_up(client)
    tab.get("/")
    assert 'rel="manifest"' in tab.text()
