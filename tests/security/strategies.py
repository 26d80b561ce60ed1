"""Hypothesis strategies for request bodies: every form and JSON endpoint's worst day.

A body is built from field names the app knows (so handlers get past "missing
field" into their validation) plus random ones, with values that are random
text, huge (over 1 MB in total), wrong types, invalid UTF-8 or empty, encoded
as a form, multipart, JSON, or a content type nobody asked for; fields may be
duplicated or missing.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

THOROUGH = os.environ.get("CHECKOS_THOROUGH", "") not in ("", "0")

# Names of the app's form fields (templates and services), so bodies reach validation.
FIELD_NAMES = (
    "name",
    "email",
    "password",
    "company_name",
    "business_type",
    "area",
    "contact_name",
    "phone",
    "website",
    "description",
    "slug",
    "version",
    "rev",
    "locale",
    "status",
    "role",
    "label",
    "kind",
    "options",
    "required",
    "action",
    "note",
    "text",
    "comment",
    "stars",
    "number",
    "customer_name",
    "customer_email",
    "customer_phone",
    "problem",
    "service_date",
    "service_time",
    "estimated_value",
    "priority",
    "technician_id",
    "quote_value",
    "quote_text",
    "decision",
    "partner_id",
    "relationship",
    "quote_required",
    "to",
    "origins",
    "width",
    "height",
    "button",
    "intro",
    "accent",
    "code",
    "form_token",
    "invite",
    "next",
    "note",
    "job",
    "as_of",
    "confirmation",
    "view",
)
MEGABYTE = 1024 * 1024

# Generated bodies per POST route (the fuzzer runs hypothesis once per route).
PER_ROUTE = 12 if THOROUGH else 3
settings.register_profile(
    "checkos-fast",
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "checkos-thorough",
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = "checkos-thorough" if THOROUGH else "checkos-fast"


@dataclass(frozen=True)
class Body:
    """One request body: raw bytes and the Content-Type header that goes with it (or None)."""

    data: bytes
    content_type: str | None
    kind: str

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep them readable
        return (
            f"Body({self.kind}, {self.content_type!r}, {len(self.data)} bytes: {self.data[:120]!r})"
        )


text_values = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(
        [
            *("", " ", "0", "-1", "1e309", "NaN", "99999999999999999999", "2024-02-30", "25:61"),
            *("true", "null", "[]", "{}", "\u202e", "\x00", "a" * 5000, "csrf", "cancel"),
        ]
    ),
)
names = st.one_of(st.sampled_from(FIELD_NAMES), st.text(min_size=1, max_size=20))
raw_bytes = st.binary(max_size=200).map(lambda b: b + b"\xff\xfe\xc3(")  # never valid UTF-8
pairs = st.lists(st.tuples(names, st.one_of(text_values, raw_bytes)), max_size=12)


def _urlencoded(items: list[tuple[str, str | bytes]]) -> bytes:
    def enc(value: str | bytes) -> str:
        return quote_from_bytes(value if isinstance(value, bytes) else value.encode())

    return "&".join(f"{enc(k)}={enc(v)}" for k, v in items).encode()


def _multipart(items: list[tuple[str, str | bytes]]) -> tuple[bytes, str]:
    boundary = "fuzz" + secrets.token_hex(6)
    out = bytearray()
    for name, value in items:
        data = value if isinstance(value, bytes) else value.encode()
        disposition = name.replace('"', "").replace("\r", "").replace("\n", "")
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{disposition}"\r\n\r\n'.encode()
        )
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def bodies(draw: st.DrawFn, csrf: str) -> Body:
    """A hostile body; ``csrf`` (the tab's valid token) is included most of the time."""
    items = draw(pairs)
    if draw(st.booleans()) and items:  # duplicated fields, conflicting values
        name, _value = items[0]
        items.append((name, draw(text_values)))
    if draw(st.integers(0, 9)) > 1:
        items.insert(draw(st.integers(0, len(items))), ("csrf_token", csrf))
    kind = draw(
        st.sampled_from(
            ["form", "form", "multipart", "json", "json_junk", "wrong_type", "none", "huge"]
        )
    )
    if kind == "form":
        return Body(_urlencoded(items), "application/x-www-form-urlencoded", kind)
    if kind == "multipart":
        data, content_type = _multipart(items)
        if draw(st.booleans()):
            content_type = "multipart/form-data"  # no boundary
        return Body(data, content_type, kind)
    if kind == "json":
        obj = {k: (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in items}
        if draw(st.booleans()):
            obj[draw(st.sampled_from(FIELD_NAMES))] = draw(json_values)  # wrong types
        return Body(json.dumps(obj).encode(), "application/json", kind)
    if kind == "json_junk":
        return Body(draw(st.one_of(raw_bytes, st.text().map(str.encode))), "application/json", kind)
    if kind == "wrong_type":
        content_type = draw(st.sampled_from(["text/plain", "application/xml", "image/png", "x/y"]))
        return Body(_urlencoded(items), content_type, kind)
    if kind == "none":
        return Body(_urlencoded(items), None, kind)
    # huge: over a megabyte in one field (API Gateway would still pass 10 MB)
    size = MEGABYTE + draw(st.integers(0, 4096))
    filler = draw(st.sampled_from([b"a", b"\xc3\xa9", b"<", b"%FF"]))
    field = draw(st.sampled_from(FIELD_NAMES)).encode()
    token = quote_from_bytes(csrf.encode()).encode()
    return Body(
        b"csrf_token=" + token + b"&" + field + b"=" + filler * (size // len(filler)),
        "application/x-www-form-urlencoded",
        kind,
    )
