"""QEMU 7.2 (Debian 12's 1:7.2+dfsg-7): the release qmpd grew up against.

Its words are the baseline (:data:`qmpd.profiles.messages.BASE`) and its
switches are :class:`~qmpd.profiles.base.Profile`'s defaults, so this profile
only names its schema folder.
"""

from __future__ import annotations

from qmpd.profiles.base import Profile


class Qemu72(Profile):
    series = "7.2"
    schema_dir = "7.2"


PROFILE = Qemu72
