"""The shape of a profile, and of a message raised by key.

A :class:`Message` is what a layer below the commands raises instead of a
finished text: a key naming the situation and the parameters that go into
the text.  A :class:`Profile` renders it in its release's words.  The
baseline words (:data:`qmpd.profiles.messages.BASE`, QEMU 7.2's) are what a
release uses unless its profile says otherwise.

>>> from qmpd.profiles.messages import BASE
>>> m = Message("job.id-in-use", id="j0")
>>> m.text()
"Job ID 'j0' already in use"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from qmpd.profiles import messages as _messages


class Message:
    """An error text to be rendered by the release's profile: ``key`` + ``params``."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params

    def text(self, table: Mapping[str, str] = _messages.BASE) -> str:
        """This message in ``table``'s words (the baseline's by default)."""
        return table[self.key].format(**self.params)

    def __repr__(self) -> str:
        return f"Message({self.key!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Message)
                and (self.key, self.params) == (other.key, other.params))

    __hash__ = None  # type: ignore[assignment]


# Something a layer says to the client: a message by key, or a text that no
# release words differently (a qmpd-only text, or one QEMU builds from user input).
Text = Message | str


class Profile:
    """One QEMU release series: subclass per series, override what differs.

    Class attributes are the release's data; methods are its hooks.  An
    instance is one exact version of the series (what the greeting and
    ``query-version`` report).
    """

    #: "7.2": the series this profile answers as.
    series: ClassVar[str] = ""
    #: Folder under ``schema/`` with this release's QAPI as JSON Schema.
    schema_dir: ClassVar[str] = ""
    #: Message key -> text template (str.format fields named as the params).
    messages: ClassVar[Mapping[str, str]] = _messages.BASE

    def __init__(self, version: tuple[int, int, int]) -> None:
        self.version = version

    def render(self, text: Text) -> str:
        """``text`` in this release's words."""
        if isinstance(text, str):
            return text
        return text.text(self.messages)

    def render_all(self, parts: tuple[Text, ...]) -> str:
        """Several parts joined, as QEMU's ``error_prepend`` builds one text."""
        return "".join(self.render(p) for p in parts)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} QEMU {'.'.join(map(str, self.version))}>"
