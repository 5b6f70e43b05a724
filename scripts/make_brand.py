"""Draw the integration's brand images into custom_components/iot_sms/brand/.

Home Assistant (2026.3 and later) serves a custom integration's own brand/ folder, so the icon
and logo live in this repository instead of home-assistant/brands. The artwork is a SIM card
with a speech bubble, drawn here with Pillow: no external assets, no downloaded fonts.

Re-run after changing the artwork:

    .venv/bin/python scripts/make_brand.py

The output is deterministic, so an unchanged script leaves the PNG files byte-for-byte equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND_DIR = Path(__file__).resolve().parent.parent / "custom_components" / "iot_sms" / "brand"

# Sizes from Home Assistant's brands guidelines: square icons, logos whose short side is
# between 128 and 256 px, and @2x variants at exactly twice the size.
ICON_SIZE = 256
LOGO_HEIGHT = 128

# ImageDraw does not anti-alias; drawing at 4x the largest output and downsampling does.
SUPERSAMPLE = 4
MASTER = ICON_SIZE * 2 * SUPERSAMPLE

# The artwork is laid out on a 1000-unit square and scaled to MASTER.
UNIT = MASTER / 1000

WORDMARK = ("IoT SIM ", "SMS")


@dataclass(frozen=True)
class Palette:
    sim_outline: str
    sim_body: str
    chip: str
    chip_lines: str
    bubble_outline: str
    bubble_fill: str
    dots: str
    text: str
    text_accent: str


LIGHT = Palette(
    sim_outline="#01579B",
    sim_body="#039BE5",
    chip="#FFC93C",
    chip_lines="#A86F00",
    bubble_outline="#01579B",
    bubble_fill="#FFFFFF",
    dots="#01579B",
    text="#263238",
    text_accent="#0277BD",
)

# On a dark background the navy outlines vanish, so they turn light and the text turns pale.
DARK = Palette(
    sim_outline="#B3E5FC",
    sim_body="#039BE5",
    chip="#FFC93C",
    chip_lines="#A86F00",
    bubble_outline="#B3E5FC",
    bubble_fill="#FFFFFF",
    dots="#0277BD",
    text="#ECEFF1",
    text_accent="#4FC3F7",
)


def u(value: float) -> int:
    return round(value * UNIT)


# Geometry in layout units.
SIM_BOX = (110, 40, 690, 840)
SIM_RADIUS = 70
SIM_CUT = 170
OUTLINE = 26
CHIP_BOX = (220, 230, 540, 470)
CHIP_RADIUS = 40
BUBBLE_BOX = (430, 470, 960, 820)
BUBBLE_RADIUS = 110
# The tail points down-left, back towards the card, so that the card "speaks".
BUBBLE_TAIL = ((520, 780), (640, 780), (500, 930))
# A transparent ring between card and bubble keeps the two shapes apart on any background.
GAP = 26


def new_mask() -> Image.Image:
    return Image.new("L", (MASTER, MASTER), 0)


def sim_mask(grow: float) -> Image.Image:
    """Card shape, grown (or shrunk, if negative) by grow layout units on every side."""
    left, top, right, bottom = SIM_BOX
    box = (u(left - grow), u(top - grow), u(right + grow), u(bottom + grow))
    mask = new_mask()
    draw = ImageDraw.Draw(mask)
    draw.rounded_rectangle(box, radius=u(SIM_RADIUS + grow), fill=255)
    # A parallel line at distance grow moves the cut along each edge by grow * (2 - sqrt 2)
    # relative to the grown box corner.
    cut = u(SIM_CUT + grow * (2 - math.sqrt(2)))
    x1, y0 = box[2], box[1]
    draw.polygon([(x1 - cut, y0 - 1), (x1 + 1, y0 - 1), (x1 + 1, y0 + cut)], fill=0)
    return mask


def bubble_mask(grow: float) -> Image.Image:
    """Bubble shape (body and tail), grown by grow layout units."""
    left, top, right, bottom = BUBBLE_BOX
    mask = new_mask()
    draw = ImageDraw.Draw(mask)
    draw.rounded_rectangle(
        (u(left - grow), u(top - grow), u(right + grow), u(bottom + grow)),
        radius=u(BUBBLE_RADIUS + grow),
        fill=255,
    )
    tail = [(u(x), u(y)) for x, y in BUBBLE_TAIL]
    draw.polygon(tail, fill=255)
    if grow > 0:
        # Only the two free sides of the tail: its base lies inside the bubble body.
        draw.line([tail[0], tail[2], tail[1]], fill=255, width=u(2 * grow), joint="curve")
    return mask


def paint(canvas: Image.Image, colour: str | tuple[int, int, int, int], mask: Image.Image) -> None:
    canvas.paste(colour, (0, 0), mask)


def draw_chip(canvas: Image.Image, palette: Palette) -> None:
    left, top, right, bottom = CHIP_BOX
    draw = ImageDraw.Draw(canvas)
    line = u(14)
    draw.rounded_rectangle(
        (u(left), u(top), u(right), u(bottom)),
        radius=u(CHIP_RADIUS),
        fill=palette.chip,
        outline=palette.chip_lines,
        width=line,
    )
    # The contact pads of a real SIM: a centre pad, a spine, and rows of pads either side.
    mid_x = (left + right) / 2
    third = (bottom - top) / 3
    pad = (mid_x - 55, top + third * 0.75, mid_x + 55, bottom - third * 0.75)
    for y in (top + third, top + 2 * third):
        draw.line([(u(left), u(y)), (u(pad[0]), u(y))], fill=palette.chip_lines, width=line)
        draw.line([(u(pad[2]), u(y)), (u(right), u(y))], fill=palette.chip_lines, width=line)
    draw.line([(u(mid_x), u(top)), (u(mid_x), u(pad[1]))], fill=palette.chip_lines, width=line)
    draw.line([(u(mid_x), u(pad[3])), (u(mid_x), u(bottom))], fill=palette.chip_lines, width=line)
    draw.rounded_rectangle(
        tuple(u(v) for v in pad), radius=u(18), outline=palette.chip_lines, width=line
    )


def draw_dots(canvas: Image.Image, palette: Palette) -> None:
    left, top, right, bottom = BUBBLE_BOX
    draw = ImageDraw.Draw(canvas)
    cy = (top + bottom) / 2
    radius = 38
    step = (right - left) / 4
    for i in (1, 2, 3):
        cx = left + step * i
        draw.ellipse(
            (u(cx - radius), u(cy - radius), u(cx + radius), u(cy + radius)), fill=palette.dots
        )


def draw_artwork(palette: Palette) -> Image.Image:
    """The icon artwork at MASTER scale, trimmed to its visible pixels."""
    canvas = Image.new("RGBA", (MASTER, MASTER), (0, 0, 0, 0))
    paint(canvas, palette.sim_outline, sim_mask(0))
    paint(canvas, palette.sim_body, sim_mask(-OUTLINE))
    draw_chip(canvas, palette)
    paint(canvas, (0, 0, 0, 0), bubble_mask(OUTLINE + GAP))
    paint(canvas, palette.bubble_outline, bubble_mask(OUTLINE))
    paint(canvas, palette.bubble_fill, bubble_mask(0))
    draw_dots(canvas, palette)
    bbox = canvas.getbbox()
    assert bbox is not None
    return canvas.crop(bbox)


def pad_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    return canvas


def make_icon(palette: Palette) -> tuple[Image.Image, tuple[int, int]]:
    """Artwork centred on a square with a small margin, and the 1x output size."""
    art = draw_artwork(palette)
    side = max(art.size)
    # Trimmed, as the brands guidelines ask, but not touching the edges, so the rounded
    # corners stay visible when Home Assistant scales the icon down.
    margin = round(side * 0.03)
    return pad_to(art, (side + 2 * margin, side + 2 * margin)), (ICON_SIZE, ICON_SIZE)


def make_logo(palette: Palette) -> tuple[Image.Image, tuple[int, int]]:
    """Icon at the left, wordmark at the right, at 4x the @2x size; and the 1x output size."""
    height = LOGO_HEIGHT * 2 * SUPERSAMPLE
    margin = round(height * 0.04)
    art = draw_artwork(palette)
    art_height = height - 2 * margin
    art = art.resize(
        (round(art.width * art_height / art.height), art_height), Image.Resampling.LANCZOS
    )

    font = ImageFont.load_default(size=round(height * 0.40))
    # The bundled font has one weight; a stroke in the text colour makes the wordmark bold
    # enough to read at 128 px.
    stroke = round(height * 0.012)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    text = "".join(WORDMARK)
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    gap = round(height * 0.10)

    width = margin + art.width + gap + (right - left) + margin
    # A width divisible by the downsampling factor keeps both outputs free of distortion, and
    # the 1x exactly half of the @2x.
    width += -width % (2 * SUPERSAMPLE)
    logo = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    logo.paste(art, (margin, margin))

    draw = ImageDraw.Draw(logo)
    x = margin + art.width + gap - left
    y = (height - (bottom - top)) // 2 - top
    for part, colour in zip(WORDMARK, (palette.text, palette.text_accent), strict=True):
        draw.text((x, y), part, font=font, fill=colour, stroke_width=stroke, stroke_fill=colour)
        x += draw.textlength(part, font=font)
    scale = 2 * SUPERSAMPLE
    return logo, (width // scale, height // scale)


def save(image: Image.Image, name: str) -> None:
    path = BRAND_DIR / name
    image.save(path, format="PNG", optimize=True)
    print(f"{path.relative_to(BRAND_DIR.parent.parent.parent)}: {image.width}x{image.height}")


def main() -> None:
    BRAND_DIR.mkdir(parents=True, exist_ok=True)
    for prefix, palette in (("", LIGHT), ("dark_", DARK)):
        for kind, make in (("icon", make_icon), ("logo", make_logo)):
            master, (width, height) = make(palette)
            for suffix, factor in (("", 1), ("@2x", 2)):
                image = master.resize((width * factor, height * factor), Image.Resampling.LANCZOS)
                save(image, f"{prefix}{kind}{suffix}.png")


if __name__ == "__main__":
    main()
