"""Logo re-encoding rules (pure, no AWS)."""

from __future__ import annotations

import io

import pytest

from chalicelib.domain.logos import LogoRejected, reencode_logo, sniff_format
from tests.web.company_factories import image_bytes, jpeg_with_exif, png_bomb


def test_magic_bytes_decide_the_format_not_the_name():
    assert sniff_format(image_bytes("PNG")) == "PNG"
    assert sniff_format(image_bytes("JPEG")) == "JPEG"
    assert sniff_format(image_bytes("WEBP")) == "WEBP"
    assert sniff_format(b"<svg></svg>") is None
    assert sniff_format(b"RIFF\0\0\0\0WAVEfmt ") is None


def test_transparency_is_kept_and_small_images_are_not_enlarged():
    from PIL import Image

    source = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    source.paste((200, 30, 30, 255), (10, 10, 30, 20))
    out = io.BytesIO()
    source.save(out, "PNG")
    encoded = reencode_logo(out.getvalue())
    image = Image.open(io.BytesIO(encoded.data))
    assert (image.format, image.size, image.mode) == ("WEBP", (40, 30), "RGBA")
    assert image.getpixel((0, 0))[3] == 0 and image.getpixel((20, 15))[3] == 255


def test_exif_orientation_is_applied_before_the_metadata_goes():
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    encoded = reencode_logo(image_bytes("JPEG", (400, 200), exif=exif.tobytes()))
    assert (encoded.width, encoded.height) == (200, 400)


def test_same_image_gives_the_same_digest():
    data = jpeg_with_exif()
    assert reencode_logo(data).digest == reencode_logo(data).digest


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"", "profile.logo.missing"),
        (b"GIF89a....", "profile.logo.bad_type"),
        (b"\xff\xd8\xff" + b"\0" * 100, "profile.logo.unreadable"),
    ],
)
def test_refusals_name_a_catalogue_message(data, key):
    with pytest.raises(LogoRejected) as refused:
        reencode_logo(data)
    assert refused.value.key == key


def test_too_many_pixels_is_refused_before_decoding():
    for side in (6_000, 20_000):  # under and over Pillow's own bomb limit
        with pytest.raises(LogoRejected) as refused:
            reencode_logo(png_bomb(side))
        assert refused.value.key == "profile.logo.too_many_pixels"
