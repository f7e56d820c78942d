"""Number parsing and formatting the way QEMU's utilities do it.

``parse_size`` follows qemu_strtosz (used by qemu-img for sizes and by -o
size options); ``cvtnum`` is qemu-io's variant; ``cvtstr`` is the human
readable size qemu-io prints ("64 KiB", "512 bytes", "1.500 KiB").
"""

from __future__ import annotations

import re

_UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
_DEC = re.compile(r"\s*([0-9]+)(\.[0-9]*)?([A-Za-z]?)$")
_HEX = re.compile(r"\s*0[xX]([0-9a-fA-F]+)([A-Za-z]?)$")


class SizeError(ValueError):
    """Unparsable size; ``too_large`` tells the two qemu messages apart."""

    def __init__(self, too_large: bool = False) -> None:
        super().__init__("too large" if too_large else "invalid")
        self.too_large = too_large


def parse_size(text: str, default_unit: str = "B") -> int:
    """qemu_strtosz: decimal (fractions need a unit) or hex, optional k/M/G/T/P/E."""
    m = _HEX.match(text)
    if m:
        value = int(m.group(1), 16)
        suffix = m.group(2)
        if suffix:
            unit = _UNITS.get(suffix.upper())
            if unit is None:
                raise SizeError()
            value *= unit
    else:
        m = _DEC.match(text)
        if not m:
            raise SizeError()
        whole, frac, suffix = m.group(1), m.group(2), m.group(3)
        unit = _UNITS.get((suffix or default_unit).upper())
        if unit is None:
            raise SizeError()
        value = int(whole) * unit
        if frac and frac != ".":
            if unit == 1:
                raise SizeError()
            value += int(float("0" + frac) * unit)
    if value > 2**64 - 1:
        raise SizeError(too_large=True)
    return value


def cvtstr(value: float) -> str:
    """qemu-io's cvtstr: three decimals, ``.000`` dropped, binary units."""
    text, suffix = f"{value:f}", " bytes"
    for shift, unit in ((60, " EiB"), (50, " PiB"), (40, " TiB"), (30, " GiB"),
                        (20, " MiB"), (10, " KiB")):
        if value >= (1 << shift):
            text, suffix = f"{value / (1 << shift):.3f}", unit
            break
    idx = text.find(".000")
    if idx >= 0:
        return text[:idx] + suffix
    return text + suffix
