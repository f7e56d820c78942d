"""Path assertions on QMP messages: iotests' ``dictpath`` and ``assert_qmp``.

``a/b[2]/c`` walks nested dicts and lists of a reply or event; these plain
functions raise ``AssertionError`` (for pytest), and ``QMPTestCase`` wraps
them into ``self.fail``.
"""

from __future__ import annotations

import re
from typing import Any

_index_re = re.compile(r"([^\[]+)\[([^\]]+)\]")


def dictpath(d: Any, path: str) -> Any:
    """Walk ``a/b[2]/c`` through nested dicts and lists; AssertionError if absent."""
    for component in path.split("/"):
        m = _index_re.match(component)
        idx = None
        if m:
            component, sidx = m.groups()
            idx = int(sidx)
        if not isinstance(d, dict) or component not in d:
            raise AssertionError(f'failed path traversal for "{path}" in "{d}"')
        d = d[component]
        if idx is not None:
            if not isinstance(d, list):
                raise AssertionError(f'path component "{component}" in "{path}" '
                                     f'is not a list in "{d}"')
            try:
                d = d[idx]
            except IndexError:
                raise AssertionError(f'invalid index "{idx}" in path "{path}" '
                                     f'in "{d}"') from None
    return d


def assert_qmp(d: Any, path: str, value: Any) -> None:
    """The value at ``path`` equals ``value`` (or, given a non-empty list, one of them)."""
    result = dictpath(d, path)
    if isinstance(value, list) and value != []:
        if result not in value:
            raise AssertionError(f'no match for "{result}" in {value}')
    elif result != value:
        raise AssertionError(f'"{path}" is "{result}", expected "{value}"')


def assert_qmp_absent(d: Any, path: str) -> None:
    """Nothing is at ``path``."""
    try:
        result = dictpath(d, path)
    except AssertionError:
        return
    raise AssertionError(f'path "{path}" has value "{result}"')
