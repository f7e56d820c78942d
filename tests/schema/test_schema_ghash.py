"""The two hash orders QEMU's choice of "unexpected" key depends on.

QDict iteration order (reference section 0.2) and the GLib GHashTable model
(section 2.3), checked on facts measured on QEMU 7.2.
"""

from __future__ import annotations

from qmpd.schema._ghash import first_unexpected, qdict_key_order


def test_qdict_order_matches_qemu_replies() -> None:
    # query-version's "qemu" object is built major, minor, micro.
    assert qdict_key_order(["major", "minor", "micro"]) == ["micro", "minor", "major"]
    # query-status: status, singlestep, running.
    assert qdict_key_order(["running", "singlestep", "status"]) == [
        "status", "singlestep", "running"]
    assert qdict_key_order(["b", "a"]) == ["a", "b"]


def test_first_unexpected_follows_glib_not_input_order() -> None:
    assert first_unexpected(["x", "y"], []) == "y"
    assert first_unexpected(["y", "x"], []) == "y"
    keys = ["driver", "node-name", "zzz", "aaa"]
    assert first_unexpected(keys, ["driver", "node-name"]) == "zzz"
    assert first_unexpected(["aaa", "zzz", "driver", "node-name"], ["driver", "node-name"]) == "zzz"


def test_single_unexpected_key_and_odd_characters() -> None:
    assert first_unexpected(["a", "b"], ["a"]) == "b"
    assert first_unexpected(["\u00e9", "\udc80", "x"], ["x"]) in ("\u00e9", "\udc80")
