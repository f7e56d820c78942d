"""Client strings as QEMU's C code holds them.

QEMU's JSON parser keeps every string as a NUL-terminated C string, so it
stores U+0000 as the overlong sequence C0 80 ("modified UTF-8") and its JSON
writer turns that back into ``\\u0000``.  What reaches the OS or an image
header is therefore never cut short at a NUL: ``"\\u0000x"`` as a filename
names the file ``b"\\xc0\\x80x"``.  Lengths QEMU checks (bitmap and export
names) are byte counts of that form.

Python refuses a NUL in a path (ValueError) and a lone surrogate in UTF-8
(UnicodeEncodeError); :func:`cstring` gives bytes for any ``str``, so no
client string can make an os call or an encoder raise.
"""

from __future__ import annotations


def cstring(text: str) -> bytes:
    """The bytes QEMU keeps for ``text`` (and hands to the OS for a path)."""
    return text.encode("utf-8", "surrogatepass").replace(b"\0", b"\xc0\x80")


def from_cstring(data: bytes) -> str:
    """A C string read back (an image header's name): it ends at the first
    NUL, C0 80 is U+0000 again, invalid UTF-8 becomes U+FFFD as in QEMU's
    JSON writer."""
    return data.split(b"\0", 1)[0].replace(b"\xc0\x80", b"\0").decode("utf-8", "replace")
