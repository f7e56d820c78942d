"""QEMU release profiles: everything a QEMU release says differently, in one place.

qmpd answers as one QEMU release at a time, picked with ``--qemu-version``.
A *profile* is that release's knowledge as data and small hooks:

* its QAPI schema: the folder ``schema/<series>/`` (argument shapes, and the
  command and event sets that ``query-commands`` / ``query-qmp-schema`` list);
* its message table: the engine and the commands raise errors *by key* with
  parameters (:class:`qmpd.profiles.base.Message`); the profile renders
  QEMU's text for them;
* the few semantic switches a release needs, as attributes and methods of its
  :class:`~qmpd.profiles.base.Profile` subclass, which the engine and the
  commands ask (``daemon.profile`` / ``graph.profile``) instead of comparing
  version numbers.

This package is the bottom of the house: it imports nothing else of qmpd, so
every layer (protocol, schema, engine, commands, server) may read it.

Adding a release: copy the closest profile module (``qemu_7_2.py``), name it
for the series, fill in what differs (schema folder, messages, switches) and
list it in :data:`qmpd.profiles.registry.SERIES`.

>>> from qmpd.profiles import select
>>> p = select("7.2.22")
>>> p.series, p.version
('7.2', (7, 2, 22))
"""

from qmpd.profiles.base import Message, Profile
from qmpd.profiles.registry import (
    DEFAULT_VERSION,
    SERIES,
    UnknownRelease,
    parse_release,
    select,
)

__all__ = ["DEFAULT_VERSION", "Message", "Profile", "SERIES", "UnknownRelease",
           "parse_release", "select"]
