"""Draws the site icons (favicon.ico, apple-touch-icon, manifest icons) from favicon.svg's mark.

Run once when the mark changes: ``.venv/bin/python -m infra.icons``; the PNG/ICO files are
committed under chalicelib/static so the app serves them without drawing anything.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

STATIC = Path(__file__).resolve().parent.parent / "chalicelib" / "static"
BLUE, WHITE = (31, 95, 191, 255), (255, 255, 255, 255)
SCALE = 8  # drawn large, then reduced: smooth edges without an SVG renderer


def draw(size: int, *, rounded: bool = True) -> Image.Image:
    """The mark of favicon.svg (a white tick on a blue square, viewBox 64) at ``size`` px."""
    big = size * SCALE
    unit = big / 64
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    radius = round(14 * unit) if rounded else 0
    pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=radius, fill=BLUE)
    points = [(18 * unit, 33 * unit), (27 * unit, 42 * unit), (46 * unit, 22 * unit)]
    width = round(7 * unit)
    pen.line(points, fill=WHITE, width=width, joint="curve")
    for x, y in (points[0], points[-1]):  # round line caps
        pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    draw(48).save(STATIC / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])
    # iOS rounds the corners itself and shows transparency as black: a full square.
    draw(180, rounded=False).convert("RGB").save(STATIC / "apple-touch-icon.png", optimize=True)
    for size in (192, 512):
        draw(size).save(STATIC / f"icon-{size}.png", optimize=True)


if __name__ == "__main__":
    main()
