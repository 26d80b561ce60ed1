"""Parse ``multipart/form-data`` bodies (file uploads) with python-multipart, in memory.

The Lambda event already holds the whole body, so parts are collected as bytes.
A file part keeps at most ``max_file_bytes + 1`` bytes: enough for the caller
to tell "too large" without holding more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# API Gateway and Lambda refuse bigger request payloads anyway (10 MB / 6 MB).
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 50


@dataclass(frozen=True)
class Upload:
    """One file part: the name the browser sent, its declared type and its bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    header_name: bytes = b""
    header_value: bytes = b""


def parse_multipart(
    body: bytes | str | None,
    content_type: str,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> tuple[dict[str, str], dict[str, Upload]]:
    """(text fields, file parts) by field name; first value wins; ({}, {}) when unparsable."""
    # Imported here: only uploads need it, and a cold start should not pay for it.
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    if not body:
        return {}, {}
    raw = body.encode("utf-8") if isinstance(body, str) else body
    _type, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary or len(raw) > MAX_BODY_BYTES:
        return {}, {}
    parts: list[_Part] = []

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        parts[-1].header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        parts[-1].header_value += data[start:end]

    def on_header_end() -> None:
        part = parts[-1]
        name = part.header_name.decode("latin-1").strip().lower()
        # latin-1 round-trips every byte; names and file names are decoded as UTF-8 below.
        part.headers[name] = part.header_value.decode("latin-1").strip()
        part.header_name, part.header_value = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        room = max_file_bytes + 1 - part.size
        if room > 0:
            chunk = data[start : min(end, start + room)]
            part.chunks.append(chunk)
            part.size += len(chunk)

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(raw)
        parser.finalize()
    except (MultipartParseError, ValueError):
        return {}, {}
    fields: dict[str, str] = {}
    uploads: dict[str, Upload] = {}
    for part in parts[:MAX_PARTS]:
        _disposition, options = parse_options_header(part.headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if not name:
            continue
        data = b"".join(part.chunks)
        if b"filename" in options:
            if name not in uploads:
                uploads[name] = Upload(
                    filename=options[b"filename"].decode("utf-8", errors="replace"),
                    content_type=part.headers.get("content-type", "application/octet-stream"),
                    data=data,
                )
        elif name not in fields:
            fields[name] = data[:MAX_FIELD_BYTES].decode("utf-8", errors="replace")
    return fields, uploads
