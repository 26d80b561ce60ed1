"""Logo images: what is accepted, and a clean re-encoding without metadata.

Pure (no AWS). Pillow is imported inside ``reencode_logo`` only: importing the
app must stay light for cold starts (a test proves ``import app`` loads no PIL).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from chalicelib.domain.errors import AppError

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
# Pixels decoded at most: a 2 MB PNG of one colour can claim 100k x 100k pixels
# (a decompression bomb); 16 Mpx covers any real logo or phone photo.
MAX_PIXELS = 16_000_000
MAX_SIDE = 512
OUTPUT_FORMAT, OUTPUT_EXTENSION, OUTPUT_TYPE = "WEBP", "webp", "image/webp"
# Sniffed from the first bytes: the declared content type and file name are the client's word.
_MAGIC: tuple[tuple[str, bytes, int], ...] = (
    ("PNG", b"\x89PNG\r\n\x1a\n", 0),
    ("JPEG", b"\xff\xd8\xff", 0),
    ("WEBP", b"WEBP", 8),
)


class LogoRejected(AppError):
    status = 422
    key = "profile.logo.unreadable"


@dataclass(frozen=True)
class EncodedLogo:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:20]


def sniff_format(data: bytes) -> str | None:
    """PNG, JPEG or WEBP from the magic bytes, else None (SVG, GIF, PDF, text...)."""
    for name, magic, offset in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


def reencode_logo(data: bytes) -> EncodedLogo:
    """Decode an upload fully and write a fresh WebP of at most 512x512 with no metadata.

    Raises LogoRejected (with a catalogue key) for anything else: too big, not
    PNG/JPEG/WebP by its bytes, undecodable or truncated, too many pixels.
    """
    if not data:
        raise LogoRejected("profile.logo.missing")
    if len(data) > MAX_UPLOAD_BYTES:
        raise LogoRejected("profile.logo.too_large", mb=MAX_UPLOAD_BYTES // (1024 * 1024))
    sniffed = sniff_format(data)
    if sniffed is None:
        raise LogoRejected("profile.logo.bad_type")

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[sniffed])
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                raise LogoRejected("profile.logo.too_many_pixels", mpx=MAX_PIXELS // 1_000_000)
            if sniffed == "JPEG":
                # Let libjpeg decode at a reduced scale: less memory, same result.
                image.draft("RGB", (MAX_SIDE * 2, MAX_SIDE * 2))
            image.load()  # decodes every byte: truncated files fail here
            image = ImageOps.exif_transpose(image)  # keep the photo upright, then drop EXIF
            has_alpha = image.mode in ("RGBA", "LA", "PA") or (
                image.mode == "P" and "transparency" in image.info
            )
            image = image.convert("RGBA" if has_alpha else "RGB")
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            # A new image from raw pixels carries no info dict: no EXIF, GPS, XMP, ICC, text.
            clean = Image.frombytes(image.mode, image.size, image.tobytes())
            out = io.BytesIO()
            clean.save(out, OUTPUT_FORMAT, quality=90, method=4)
    except LogoRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LogoRejected("profile.logo.too_many_pixels", mpx=MAX_PIXELS // 1_000_000) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise LogoRejected("profile.logo.unreadable") from None
    return EncodedLogo(
        data=out.getvalue(),
        content_type=OUTPUT_TYPE,
        extension=OUTPUT_EXTENSION,
        width=clean.width,
        height=clean.height,
    )
