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
    # Non-ASCII keys hash as signed chars in g_str_hash.  Measured on QEMU 7.2
    # with query-status and these two unexpected keys, in both orders:
    # "Parameter 'ü' is unexpected", "'中'", "'z'" and "'é'" respectively.
    # (A lone surrogate such as \udc80 never gets this far: QEMU's parser
    # refuses it.)
    for first, second, named in (("\u00e9", "\u00fc", "\u00fc"), ("\u00e9", "\u4e2d", "\u4e2d"),
                                 ("\u00e9", "z", "z"), ("\u00e9", "a", "\u00e9")):
        assert first_unexpected([first, second, "x"], ["x"]) == named
        assert first_unexpected([second, first, "x"], ["x"]) == named
