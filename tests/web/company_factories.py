"""Builders for company profile and logo tests: settings forms, staff users, images, uploads."""

from __future__ import annotations

import io
import secrets
import struct
import zlib

from chalicelib.db.accounts import Company, Login, User
from chalicelib.domain.passwords import hash_password
from chalicelib.services import companies
from chalicelib.services.sessions import now
from chalicelib.web import http
from tests.web.factories import PASSWORD, unique_email
from tests.web.session import WebSession


def company_of(tab: WebSession) -> Company:
    _token, _user, company_id, _ = http.unpack(tab.cookies["sid"], "session")
    return Company.get(*Company.key(company_id), consistent_read=True)


def settings_form(tab: WebSession, **changes: str) -> dict[str, str]:
    """The settings form as the page shows it now, with ``changes`` typed over it."""
    tab.get("/settings/company")
    form = companies.profile_values(company_of(tab))
    form.update(changes)
    return form


def save_settings(tab: WebSession, **changes: str):
    return tab.post("/settings/company", settings_form(tab, **changes))


def staff_member(client, admin_tab: WebSession) -> WebSession:
    """A signed-in staff (non-admin) user of the admin's company."""
    company = company_of(admin_tab)
    email, user_id = unique_email("staff"), secrets.token_hex(8)
    User(
        *User.key(company.company_id, user_id),
        user_id=user_id,
        company_id=company.company_id,
        email=email,
        name="Bruno Lima",
        role="staff",
        created_at=now(),
    ).save()
    Login(
        *Login.key(email),
        user_id=user_id,
        company_id=company.company_id,
        password_hash=hash_password(PASSWORD),
    ).save()
    tab = WebSession(client)
    tab.get("/login")
    assert tab.post("/login", {"email": email, "password": PASSWORD}).status_code == 303
    return tab


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (300, 200), **save: object) -> bytes:
    from PIL import Image, ImageDraw

    mode = "RGBA" if fmt == "PNG" else "RGB"
    image = Image.new(mode, size, (31, 95, 191, 255) if mode == "RGBA" else (31, 95, 191))
    ImageDraw.Draw(image).ellipse((10, 10, size[0] - 10, size[1] - 10), fill=(250, 200, 20))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0131] = "secret-editor 1.0"  # Software
    gps = {1: "S", 2: (23.0, 33.0, 1.0), 3: "W", 4: (46.0, 38.0, 2.0)}
    exif[0x8825] = gps  # GPS IFD
    return image_bytes("JPEG", (640, 480), exif=exif.tobytes(), quality=90)


def multipart_body(
    fields: dict[str, str], files: dict[str, tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """(body, content type) of a browser-like multipart/form-data form."""
    boundary = "----checkos" + secrets.token_hex(8)
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for name, (filename, content_type, data) in files.items():
        out.write(f"--{boundary}\r\n".encode())
        out.write(
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
        )
        out.write(f"Content-Type: {content_type}\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def upload_logo(tab: WebSession, data: bytes, filename: str = "logo.png", content_type: str = ""):
    tab.get("/settings/company/logo")
    body, content_type_header = multipart_body(
        {"csrf_token": tab.csrf()},
        {"logo": (filename, content_type or "image/png", data)},
    )
    return tab.post_raw("/settings/company/logo", body, content_type_header)


def png_bomb(side: int = 20_000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels, built row by row in little memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + side // 8)  # filter byte + packed bits
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks
