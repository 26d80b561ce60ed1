"""Logo upload: accepted formats, refusals that keep the old logo, re-encoding, serving."""

from __future__ import annotations

import io

import pytest

from chalicelib.aws import files
from tests.web.company_factories import (
    company_of,
    image_bytes,
    jpeg_with_exif,
    multipart_body,
    png_bomb,
    staff_member,
    upload_logo,
)
from tests.web.factories import sign_up

BROWSER_IMAGE_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def _logo_path(company) -> str:
    return f"/logo/{company.company_id}/{company.logo_key.rsplit('/', 1)[-1]}"


def _open(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_png_upload_becomes_the_logo_in_everyones_header(client):
    admin = sign_up(client)
    staff = staff_member(client, admin)
    response = upload_logo(admin, image_bytes("PNG", (1200, 800)))
    assert response.status_code == 303, admin.text()
    assert response.headers["Location"] == "/settings/company#f-logo"
    company = company_of(admin)
    assert company.logo_key.startswith(f"logos/{company.company_id}/")
    assert company.logo_key.endswith(".webp")
    path = _logo_path(company)
    admin.get("/settings/company")
    assert "Logo saved." in admin.text()
    assert f'src="{path}"' in admin.text()
    staff.get("/")
    assert f'class="brand-logo" src="{path}"' in staff.text()
    stored = _open(files.get_bytes(company.logo_key).data)
    assert stored.format == "WEBP"
    assert max(stored.size) == 512 and stored.size == (512, 341)  # fitted, ratio kept


def test_logo_is_served_with_its_type_and_a_long_cache(client):
    tab = sign_up(client)
    upload_logo(tab, image_bytes("PNG"))
    path = _logo_path(company_of(tab))
    for accept in (BROWSER_IMAGE_ACCEPT, "image/avif,image/webp,*/*", "image/webp"):
        response = client.http.get(path, headers={"Accept": accept})
        assert response.status_code == 200, accept
        assert response.headers["Content-Type"] == "image/webp"
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert _open(response.body).format == "WEBP"


def test_serving_a_logo_reads_no_dynamodb(client, budget):
    tab = sign_up(client)
    upload_logo(tab, image_bytes("PNG"))
    path = _logo_path(company_of(tab))
    cookie = "; ".join(f"{k}={v}" for k, v in tab.cookies.items())  # signed in, yet no read
    with budget:
        response = client.http.get(path, headers={"Accept": BROWSER_IMAGE_ACCEPT, "Cookie": cookie})
    assert response.status_code == 200
    assert budget.dynamodb_requests == 0
    assert [c.operation for c in budget.calls] == ["GetObject"]


@pytest.mark.parametrize(
    "path",
    [
        "/logo/0123456789abcdef/ffffffffffffffffffff.webp",
        "/logo/0123456789abcdef/..%2F..%2Fsecret.webp",
        "/logo/not-an-id/ffffffffffffffffffff.webp",
        "/logo/0123456789abcdef/ffffffffffffffffffff.svg",
    ],
)
def test_unknown_or_malformed_logo_paths_are_404(client, path):
    assert client.http.get(path, headers={"Accept": "*/*"}).status_code == 404


def test_jpeg_with_exif_and_gps_is_reencoded_without_metadata(client):
    tab = sign_up(client)
    original = jpeg_with_exif()
    assert b"SpyCam" in original and _open(original).getexif()  # the fixture carries EXIF
    assert upload_logo(tab, original, "photo.jpg", "image/jpeg").status_code == 303
    stored = files.get_bytes(company_of(tab).logo_key).data
    image = _open(stored)
    assert image.format == "WEBP"
    assert b"SpyCam" not in stored and b"Exif" not in stored and b"secret-editor" not in stored
    assert not image.getexif()
    assert "exif" not in image.info and "icc_profile" not in image.info and "xmp" not in image.info


def test_webp_is_accepted(client):
    tab = sign_up(client)
    assert upload_logo(tab, image_bytes("WEBP"), "logo.webp", "image/webp").status_code == 303


def _refused(tab, data: bytes, filename: str, content_type: str, message: str) -> None:
    before = company_of(tab).logo_key
    response = upload_logo(tab, data, filename, content_type)
    assert response.status_code == 422, tab.text()
    assert message in tab.text()
    assert "Your current logo was kept." in tab.text()
    assert company_of(tab).logo_key == before


@pytest.fixture
def tab_with_logo(client):
    tab = sign_up(client)
    assert upload_logo(tab, image_bytes("PNG")).status_code == 303
    return tab


def test_svg_is_refused(tab_with_logo):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    _refused(tab_with_logo, svg, "logo.svg", "image/svg+xml", "Use a PNG, JPEG or WebP image")


def test_gif_and_text_are_refused(tab_with_logo):
    gif = image_bytes("GIF")
    _refused(tab_with_logo, gif, "logo.gif", "image/gif", "Use a PNG, JPEG or WebP image")
    _refused(tab_with_logo, b"hello", "logo.png", "image/png", "Use a PNG, JPEG or WebP image")


def test_fake_png_is_refused(tab_with_logo):
    fake = b"\x89PNG\r\n\x1a\n" + b"this is not really an image" * 20
    _refused(tab_with_logo, fake, "logo.png", "image/png", "could not be read as an image")


def test_truncated_image_is_refused(tab_with_logo):
    whole = image_bytes("PNG", (800, 800))
    _refused(tab_with_logo, whole[: len(whole) // 2], "logo.png", "image/png", "could not be read")
    jpeg = image_bytes("JPEG", (800, 800))
    _refused(tab_with_logo, jpeg[: len(jpeg) // 2], "cut.jpg", "image/jpeg", "could not be read")


def test_file_over_two_megabytes_is_refused(tab_with_logo):
    big = image_bytes("PNG", (64, 64)) + b"\0" * (3 * 1024 * 1024)
    _refused(tab_with_logo, big, "big.png", "image/png", "larger than 2 MB")


def test_decompression_bomb_is_refused(tab_with_logo):
    bomb = png_bomb()  # 400 Mpx in about 60 kB
    assert len(bomb) < 2 * 1024 * 1024
    _refused(tab_with_logo, bomb, "bomb.png", "image/png", "too many pixels")


def test_missing_file_is_refused_with_a_message(client):
    tab = sign_up(client)
    tab.get("/settings/company/logo")
    body, content_type = multipart_body({"csrf_token": tab.csrf()}, {})
    response = tab.post_raw("/settings/company/logo", body, content_type)
    assert response.status_code == 422
    assert "Choose an image file first." in tab.text()


def test_upload_without_csrf_token_is_403(client):
    tab = sign_up(client)
    body, content_type = multipart_body({}, {"logo": ("a.png", "image/png", image_bytes())})
    assert tab.post_raw("/settings/company/logo", body, content_type).status_code == 403
    assert company_of(tab).logo_key is None


def test_staff_cannot_upload_a_logo(client):
    admin = sign_up(client)
    staff = staff_member(client, admin)
    staff.get("/")
    body, content_type = multipart_body(
        {"csrf_token": staff.csrf()}, {"logo": ("a.png", "image/png", image_bytes())}
    )
    assert staff.post_raw("/settings/company/logo", body, content_type).status_code == 403
    assert company_of(admin).logo_key is None


def test_replacing_the_logo_deletes_the_old_object(client):
    tab = sign_up(client)
    upload_logo(tab, image_bytes("PNG", (100, 100)))
    first = company_of(tab).logo_key
    upload_logo(tab, image_bytes("PNG", (120, 90)))
    second = company_of(tab).logo_key
    assert first != second
    assert files.get_bytes(first) is None and files.get_bytes(second) is not None


def test_logo_page_loads_the_preview_script_and_costs_one_request(client, budget):
    tab = sign_up(client)
    with budget:
        response = tab.get("/settings/company/logo")
    assert response.status_code == 200
    assert budget.dynamodb_requests == 1
    body = tab.text()
    assert "/static/logo.js?v=" in body
    assert 'enctype="multipart/form-data"' in body
    assert 'accept="image/png,image/jpeg,image/webp"' in body
    for size in (32, 64, 128, 256):
        assert f'data-size="{size}"' in body


def test_a_new_logo_reaches_the_partner_directory_card(client):
    """The directory cards copy the logo; both change in one transaction."""
    from chalicelib.db.base import Item
    from chalicelib.services import directory

    tab = sign_up(client, company_name="Zeppelin Logo Works")
    assert upload_logo(tab, image_bytes("PNG")).status_code == 303
    company = company_of(tab)
    cards = list(directory.entries_for(company).values())
    assert cards
    stored = [Item.get(card.pk, card.sk) for card in cards]
    assert {s.logo_key for s in stored} == {company.logo_key}
