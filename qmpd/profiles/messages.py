"""The baseline message table: each message key's text in QEMU 7.2's words.

A release whose words differ overrides single keys in its profile's
``messages`` (``{**BASE, "key": "its text"}``); everything it does not
override reads as here.  Templates use ``str.format`` fields named like the
:class:`~qmpd.profiles.base.Message` parameters.

Keys are grouped by the part of QEMU that says them (``job.``, ``reopen.``,
``node.`` ...), so a reader can find a release's wording of one situation in
one place.
"""

from __future__ import annotations

BASE: dict[str, str] = {
    # job.c / blockjob.c
    "job.id-in-use": "Job ID '{id}' already in use",
    "job.id-invalid": "Invalid job ID '{id}'",
}
