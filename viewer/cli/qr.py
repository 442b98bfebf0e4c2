"""The server's address as a QR code in the terminal, so a headset or phone can open it.

Two module rows per text line with Unicode half blocks, drawn black on white with
ANSI colours whatever the terminal's theme (scanners need dark on light), inside
a 4-module quiet zone.
"""

from __future__ import annotations

BORDER = 4
_ON = "\x1b[30;47m"  # black on white
_OFF = "\x1b[0m"
_BLOCKS = {(0, 0): " ", (1, 0): "\u2580", (0, 1): "\u2584", (1, 1): "\u2588"}  # (top dark, bottom dark)


def qr_matrix(text: str, border: int = BORDER) -> list[list[int]]:
    """Rows of 0 (light) / 1 (dark) modules, quiet zone included."""
    import segno

    qr = segno.make(text, error="m", micro=False)
    return [[1 if v else 0 for v in row] for row in qr.matrix_iter(scale=1, border=border)]


def qr_lines(text: str, color: bool = True) -> list[str]:
    """The QR code of `text` as terminal lines (half blocks; ANSI colours unless color=False)."""
    rows = qr_matrix(text)
    if len(rows) % 2:
        rows.append([0] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2]):
        line = "".join(_BLOCKS[(t, b)] for t, b in zip(top, bottom))
        lines.append(f"{_ON}{line}{_OFF}" if color else line)
    return lines
