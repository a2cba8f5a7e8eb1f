"""A 5x7 bitmap font for the characters of a timestamp, drawn into an 8-bit luma plane."""

from __future__ import annotations

GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    " ": ("00000",) * 7,
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
}
GLYPH_W = 5
GLYPH_H = 7


def text_width(text: str, scale: int) -> int:
    return len(text) * (GLYPH_W + 1) * scale


def draw_text(
    plane: bytearray, stride: int, x: int, y: int, text: str, scale: int, value: int = 235
) -> None:
    """Draw ``text`` with its top-left corner at (x, y); unknown characters are blanks."""
    run = bytes([value]) * scale
    for i, ch in enumerate(text):
        glyph = GLYPHS.get(ch, GLYPHS[" "])
        gx = x + i * (GLYPH_W + 1) * scale
        for row, bits in enumerate(glyph):
            for col, bit in enumerate(bits):
                if bit != "1":
                    continue
                px = gx + col * scale
                for dy in range(scale):
                    start = (y + row * scale + dy) * stride + px
                    plane[start : start + scale] = run
