"""Multipart form parsing for uploads (no AWS)."""

from __future__ import annotations

from chalicelib.web.multipart import parse_multipart
from tests.web.company_factories import multipart_body


def test_fields_and_files_are_split_and_utf8_names_survive():
    body, content_type = multipart_body(
        {"csrf_token": "abc", "note": "ação"},
        {"logo": ("logotipo ção.png", "image/png", b"\x89PNG\r\n\x1a\nbytes\r\n--x")},
    )
    fields, files = parse_multipart(body, content_type)
    assert fields == {"csrf_token": "abc", "note": "ação"}
    assert files["logo"].filename == "logotipo ção.png"
    assert files["logo"].content_type == "image/png"
    assert files["logo"].data == b"\x89PNG\r\n\x1a\nbytes\r\n--x"


def test_a_file_keeps_at_most_the_limit_plus_one_byte():
    body, content_type = multipart_body({"a": "1"}, {"f": ("x.bin", "x/y", b"z" * 5000)})
    _fields, files = parse_multipart(body, content_type, max_file_bytes=1000)
    assert len(files["f"].data) == 1001  # enough to say "too large", no more


def test_garbage_and_missing_boundary_give_nothing():
    assert parse_multipart(b"--nope\r\n\r\n", "multipart/form-data") == ({}, {})
    assert parse_multipart(b"", "multipart/form-data; boundary=x") == ({}, {})
    fields, files = parse_multipart(b"not multipart at all", "multipart/form-data; boundary=x")
    assert (fields, files) == ({}, {})
