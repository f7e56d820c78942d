"""Every verified validation reply of reference sections 1.2, 2.3, 2.4 and 5.1.

Each row is what QEMU 7.2 answers (class GenericError) and what a client sees
from qmpd for the same arguments.  ``None`` means the arguments pass the
visitor (the command's own checks come later and are not this module's job).
"""

from __future__ import annotations

import pytest

from qmpd.schema import ArgumentError
from qmpd.schema import load as load_schema

# QEMU 7.2's schema: the reference was measured on 7.2.
validate = load_schema("7.2").validate

NC = {"driver": "null-co", "node-name": "n1"}
Q2 = {"driver": "qcow2", "node-name": "q"}
FILE = {"driver": "file", "filename": "/x"}

ROWS: list[tuple[str, dict, str | None]] = [
    ("blockdev-add", {}, "Parameter 'driver' is missing"),
    ("blockdev-add", {"node-name": "n0"}, "Parameter 'driver' is missing"),
    ("blockdev-add", {"driver": "nosuch", "node-name": "n0"},
     "Parameter 'driver' does not accept value 'nosuch'"),
    ("blockdev-add", {"driver": 5}, "Invalid parameter type for 'driver', expected: string"),
    ("blockdev-add", {"driver": None}, "Invalid parameter type for 'driver', expected: string"),
    ("blockdev-add", {"driver": "null-co"}, None),
    ("blockdev-add", {"driver": "null-co", "node-name": 7},
     "Invalid parameter type for 'node-name', expected: string"),
    ("blockdev-add", {"driver": "null-co", "node-name": None},
     "Invalid parameter type for 'node-name', expected: string"),
    ("blockdev-add", {**NC, "size": "big"}, "Invalid parameter type for 'size', expected: integer"),
    ("blockdev-add", {**NC, "size": 1.5}, "Invalid parameter type for 'size', expected: integer"),
    ("blockdev-add", {**NC, "size": 18446744073709551615},
     "Invalid parameter type for 'size', expected: integer"),
    ("blockdev-add", {**NC, "bogus": 1}, "Parameter 'bogus' is unexpected"),
    ("blockdev-add", {**NC, "read-only": "yes"},
     "Invalid parameter type for 'read-only', expected: boolean"),
    ("blockdev-add", {**NC, "read-only": 1},
     "Invalid parameter type for 'read-only', expected: boolean"),
    ("blockdev-add", {**NC, "read-only": None},
     "Invalid parameter type for 'read-only', expected: boolean"),
    ("blockdev-add", {**NC, "discard": "sometimes"},
     "Parameter 'discard' does not accept value 'sometimes'"),
    ("blockdev-add", {**NC, "detect-zeroes": "maybe"},
     "Parameter 'detect-zeroes' does not accept value 'maybe'"),
    ("blockdev-add", {**NC, "cache": {"direct": "x"}},
     "Invalid parameter type for 'cache.direct', expected: boolean"),
    ("blockdev-add", {**NC, "cache": {"bogus": True}}, "Parameter 'cache.bogus' is unexpected"),
    ("blockdev-add", {**NC, "cache": True}, "Invalid parameter type for 'cache', expected: object"),
    ("blockdev-add", {**NC, "file": {"driver": "null-co"}}, "Parameter 'file' is unexpected"),
    ("blockdev-add", {"driver": "raw", "node-name": "r", "file": "n1", "backing": None},
     "Parameter 'backing' is unexpected"),
    ("blockdev-add", {"driver": "file", "node-name": "f1"}, "Parameter 'filename' is missing"),
    ("blockdev-add", Q2, "Parameter 'file' is missing"),
    ("blockdev-add", {**Q2, "file": 5}, "Invalid parameter type for 'file', expected: BlockdevRef"),
    ("blockdev-add", {**Q2, "file": None},
     "Invalid parameter type for 'file', expected: BlockdevRef"),
    ("blockdev-add", {**Q2, "file": {"driver": "file"}}, "Parameter 'file.filename' is missing"),
    ("blockdev-add", {**Q2, "file": {"filename": "/x"}}, "Parameter 'file.driver' is missing"),
    ("blockdev-add", {**Q2, "file": {**FILE, "bogus": 1}}, "Parameter 'file.bogus' is unexpected"),
    ("blockdev-add", {**Q2, "file": "f", "backing": 5},
     "Invalid parameter type for 'backing', expected: BlockdevRefOrNull"),
    ("blockdev-add", {**Q2, "file": "f", "backing": None}, None),
    ("blockdev-add", {**Q2, "file": "f", "lazy-refcounts": "on"},
     "Invalid parameter type for 'lazy-refcounts', expected: boolean"),
    ("blockdev-add", {**Q2, "file": "f", "l2-cache-size": "1M"},
     "Invalid parameter type for 'l2-cache-size', expected: integer"),
    ("blockdev-add", {**Q2, "file": "f", "overlap-check": "bogus"},
     "Parameter 'overlap-check' does not accept value 'bogus'"),
    ("blockdev-add", {**Q2, "file": "f", "overlap-check": {"template": "bogus"}},
     "Parameter 'template' does not accept value 'bogus'"),
    ("blockdev-add", {**Q2, "file": "f", "overlap-check": 5},
     "Invalid parameter type for 'overlap-check', expected: Qcow2OverlapChecks"),
    ("blockdev-add", {**Q2, "file": "f", "encrypt": {}}, "Parameter 'encrypt.format' is missing"),
    ("blockdev-add", {**Q2, "file": "f", "encrypt": {"format": "nope"}},
     "Parameter 'format' does not accept value 'nope'"),
    ("blockdev-add", {"driver": "throttle", "node-name": "t", "file": "n1"},
     "Parameter 'throttle-group' is missing"),
    ("blockdev-add", {"driver": "quorum", "node-name": "qu", "children": []},
     "Parameter 'vote-threshold' is missing"),
    ("blockdev-add", {"driver": "quorum", "node-name": "qu", "children": 5},
     "Invalid parameter type for 'children', expected: array"),
    ("blockdev-add", {"driver": "quorum", "node-name": "qu", "children": [5]},
     "Invalid parameter type for 'null', expected: BlockdevRef"),
    ("blockdev-add", {"driver": "quorum", "node-name": "qu",
                      "children": [{"driver": "null-co", "size": "x"}]},
     "Invalid parameter type for 'children[0].size', expected: integer"),
    ("blockdev-add", {"driver": "blkdebug", "node-name": "d", "image": "n1",
                      "inject-error": [{"event": "bogus"}]},
     "Parameter 'event' does not accept value 'bogus'"),
    ("blockdev-add", {"driver": "blkdebug", "node-name": "d", "image": "n1",
                      "inject-error": [{"event": "read_aio", "errno": "x"}]},
     "Invalid parameter type for 'inject-error[0].errno', expected: integer"),
    ("blockdev-add", {**FILE, "node-name": "f", "aio": "bogus"},
     "Parameter 'aio' does not accept value 'bogus'"),
    ("blockdev-add", {**FILE, "node-name": "f", "locking": "bogus"},
     "Parameter 'locking' does not accept value 'bogus'"),
    ("blockdev-add", {**FILE, "node-name": "f", "locking": True},
     "Invalid parameter type for 'locking', expected: string"),
    ("blockdev-add", {"driver": "null-co", "node-name": "n1", "zzz": 1, "aaa": 2},
     "Parameter 'zzz' is unexpected"),
    ("blockdev-add", {"driver": "null-co", "node-name": "n1", "aaa": 2, "zzz": 1},
     "Parameter 'zzz' is unexpected"),
    # 2.3: order of checks.
    ("blockdev-add", {"driver": "null-co", "node-name": "n1", "bogus": 1, "detect-zeroes": "x"},
     "Parameter 'detect-zeroes' does not accept value 'x'"),
    ("blockdev-add", {"size": "x", "driver": "null-co"},
     "Invalid parameter type for 'size', expected: integer"),
    ("query-name", {"x": 1, "y": 2}, "Parameter 'y' is unexpected"),
    ("query-version", {"x": 1}, "Parameter 'x' is unexpected"),
    ("query-named-block-nodes", {"flat": "yes"},
     "Invalid parameter type for 'flat', expected: boolean"),
    ("blockdev-del", {}, "Parameter 'node-name' is missing"),
    ("blockdev-del", {"node-name": 1}, "Invalid parameter type for 'node-name', expected: string"),
    # 1.2: qmp_capabilities.
    ("qmp_capabilities", {"enable": ["oob"]}, None),
    ("qmp_capabilities", {"enable": ["oob", "oob"]}, None),
    ("qmp_capabilities", {"enable": ["foo"]}, "Parameter 'null' does not accept value 'foo'"),
    ("qmp_capabilities", {"enable": "oob"}, "Invalid parameter type for 'enable', expected: array"),
    ("qmp_capabilities", {"foo": 1}, "Parameter 'foo' is unexpected"),
    # 5.1 / 2.2: blockdev-reopen paths.
    ("blockdev-reopen", {}, "Parameter 'options' is missing"),
    ("blockdev-reopen", {"options": {}}, "Invalid parameter type for 'options', expected: array"),
    ("blockdev-reopen", {"options": []}, None),
    ("blockdev-reopen", {"options": [{"driver": 1}]},
     "Invalid parameter type for 'options[0].driver', expected: string"),
    ("blockdev-reopen", {"options": [{"driver": ""}]},
     "Parameter 'driver' does not accept value ''"),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "q", "file": {"driver": "file"}}]},
     "Parameter 'options[0].file.filename' is missing"),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "q", "file": 5}]},
     "Invalid parameter type for 'file', expected: BlockdevRef"),
    ("blockdev-reopen", {"options": [{"driver": "raw", "node-name": "r", "file": "f", "backing": None}]},
     "Parameter 'options[0].backing' is unexpected"),
    ("blockdev-reopen", {"options": [{"driver": "null-co", "node-name": 1}]},
     "Invalid parameter type for 'options[0].node-name', expected: string"),
    ("x-blockdev-reopen", {"driver": "null-co", "node-name": 1},
     "Invalid parameter type for 'node-name', expected: string"),
    ("x-blockdev-reopen", {"driver": "qcow2", "node-name": "q", "file": {"driver": "file"}},
     "Parameter 'file.filename' is missing"),
    ("x-blockdev-reopen", {"driver": "qcow2", "node-name": "hd0", "file": "hd0-file",
                           "backing": None}, None),
    # 7.2, 8: jobs and HMP.
    ("block-job-set-speed", {"device": "j", "speed": -1}, None),
    ("human-monitor-command", {}, "Parameter 'command-line' is missing"),
    ("human-monitor-command", {"command-line": "info version", "cpu-index": 5}, None),
    ("x-qmpd-clock-step", {"ns": 1000}, None),
    ("x-qmpd-clock-step", {}, "Parameter 'ns' is missing"),
    ("x-qmpd-reset", {"x": 1}, "Parameter 'x' is unexpected"),
]


@pytest.mark.parametrize(("command", "args", "desc"), ROWS,
                         ids=[f"{i}-{r[0]}" for i, r in enumerate(ROWS)])
def test_reference_row(command: str, args: dict, desc: str | None) -> None:
    if desc is None:
        validate(command, args)
    else:
        with pytest.raises(ArgumentError) as ei:
            validate(command, args)
        assert ei.value.desc == desc
        assert str(ei.value) == desc


def test_validate_does_not_change_arguments() -> None:
    args = {"driver": "qcow2", "node-name": "q", "file": {"driver": "file", "filename": "/x"}}
    before = repr(args)
    validate("blockdev-add", args)
    assert repr(args) == before


def test_unknown_command_is_left_to_the_caller() -> None:
    validate("no-such-command", {"anything": 1})
