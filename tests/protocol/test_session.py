"""QMP session rules (reference §1.1, §1.2, §1.4) through the sans-I/O Session."""

from __future__ import annotations

import pytest
from protocol_helpers import QEMU_VERSION, drive, negotiated_session

from qmpd.protocol import Request, Session


def err(desc: str, cls: str = "GenericError", id_: str | None = None) -> bytes:
    head = f'{{"id": {id_}, ' if id_ is not None else "{"
    return f'{head}"error": {{"class": "{cls}", "desc": "{desc}"}}}}\r\n'.encode()


def test_greeting_bytes():
    s = Session(QEMU_VERSION)
    assert s.greeting() == (
        b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, '
        b'"package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n')
    assert Session(QEMU_VERSION, capabilities=()).greeting().endswith(b'"capabilities": []}}\r\n')


# -- §1.2 negotiation ----------------------------------------------------------

NEED = "Expecting capabilities negotiation with 'qmp_capabilities'"


@pytest.mark.parametrize("msg, reply", [
    (b'{"execute":"query-version"}', err(NEED, "CommandNotFound")),
    (b'{"execute":"nosuch","id":1}', err(NEED, "CommandNotFound", "1")),
    (b'{"execute":"blockdev-add","arguments":{"bogus":1},"id":"a"}',
     err(NEED, "CommandNotFound", '"a"')),
    (b'{"exec-oob":"yank","id":3}', err("QMP input member 'exec-oob' is unexpected", id_="3")),
])
def test_refused_before_negotiation(msg, reply):
    s = Session(QEMU_VERSION)
    assert s.feed(msg) == [reply]
    assert not s.negotiated


def test_negotiation_plain():
    s = Session(QEMU_VERSION)
    [req] = s.feed(b'{"execute":"qmp_capabilities","id":"c"}')
    assert req == Request("qmp_capabilities", None, "c", True, False)
    assert s.reply(req, {}) == b'{"return": {}, "id": "c"}\r\n'
    assert s.negotiated and not s.oob_enabled


@pytest.mark.parametrize("enable", [b'["oob"]', b'["oob","oob"]'])
def test_negotiation_with_oob(enable):
    s = Session(QEMU_VERSION)
    assert drive(s, [b'{"execute":"qmp_capabilities","arguments":{"enable":' + enable + b"}}"]) \
        == [b'{"return": {}}\r\n']
    assert s.negotiated and s.oob_enabled


@pytest.mark.parametrize("args, desc", [
    (b'{"enable":["foo"]}', "Parameter 'null' does not accept value 'foo'"),
    (b'{"enable":"oob"}', "Invalid parameter type for 'enable', expected: array"),
    (b'{"foo":1}', "Parameter 'foo' is unexpected"),
])
def test_failed_negotiation_stays_in_negotiation_mode(args, desc):
    s = Session(QEMU_VERSION)
    assert drive(s, [b'{"execute":"qmp_capabilities","arguments":' + args + b"}"]) == [err(desc)]
    assert not s.negotiated
    assert s.feed(b'{"execute":"query-version"}') == [err(NEED, "CommandNotFound")]


def test_capability_not_offered():
    s = Session(QEMU_VERSION, capabilities=())
    assert drive(s, [b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}']) == \
        [err("Capability oob not available")]
    assert not s.negotiated


def test_second_negotiation_is_refused():
    s = negotiated_session()
    already = "Capabilities negotiation is already complete, command ignored"
    assert s.feed(b'{"execute":"qmp_capabilities","id":9}') == [err(already, "CommandNotFound", "9")]
    assert s.feed(b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}') == \
        [err(already, "CommandNotFound")]
    # arguments that need validating go to the caller first (QEMU checks them first)
    assert drive(s, [b'{"execute":"qmp_capabilities","arguments":{"foo":1},"id":1}']) == \
        [err("Parameter 'foo' is unexpected", id_="1")]
    assert drive(s, [b'{"execute":"qmp_capabilities","arguments":{"enable":[]},"id":2}']) == \
        [err(already, "CommandNotFound", "2")]
    # a caller whose validation passed gets the same error from reply()
    req = Request("qmp_capabilities", {"enable": []}, 3, True, False)
    assert s.reply(req, {}) == err(already, "CommandNotFound", "3")
    assert not s.oob_enabled


def test_pipelined_negotiation_holds_later_input():
    s = Session(QEMU_VERSION)
    items = s.feed(b'{"execute":"qmp_capabilities","id":1}{"execute":"nosuch","id":2}')
    assert len(items) == 1 and isinstance(items[0], Request)
    assert not s.has_pending  # not before the negotiation request is answered
    assert s.reply(items[0], {}) == b'{"return": {}, "id": 1}\r\n'
    assert s.has_pending
    [req] = s.feed(b"")
    assert req == Request("nosuch", None, 2, True, False)
    assert not s.has_pending


def test_pipelined_failed_negotiation():
    s = Session(QEMU_VERSION)
    out = drive(s, [b'{"execute":"qmp_capabilities","arguments":{"foo":1}}'
                    b'{"execute":"query-version"}'])
    assert out == [err("Parameter 'foo' is unexpected"), err(NEED, "CommandNotFound")]


def test_command_mode_requests():
    s = negotiated_session()
    [r1, r2] = s.feed(b'{"execute":"query-version","id":1}{"execute":"x","arguments":{"a":1}}')
    assert r1 == Request("query-version", None, 1, True, False)
    assert r2 == Request("x", {"a": 1}, None, False, False)
    assert s.reply(r1, {"a": 1}) == b'{"return": {"a": 1}, "id": 1}\r\n'
    assert s.reply(r2, {}) == b'{"return": {}}\r\n'
    assert s.error(r1, "CommandNotFound", "The command x has not been found") == \
        err("The command x has not been found", "CommandNotFound", "1")


# -- §1.4 envelope -----------------------------------------------------------------

@pytest.mark.parametrize("msg, reply", [
    (b"[1,2]", err("QMP input must be a JSON object")),
    (b'"hello"', err("QMP input must be a JSON object")),
    (b"{}", err("QMP input lacks member 'execute'")),
    (b'{"id": 5}', err("QMP input lacks member 'execute'", id_="5")),
    (b'{"execute": 42}', err("QMP input member 'execute' must be a string")),
    (b'{"execute":"query-version","arguments":[],"id":7}',
     err("QMP input member 'arguments' must be an object", id_="7")),
    (b'{"execute":"query-version","arguments":null,"id":7}',
     err("QMP input member 'arguments' must be an object", id_="7")),
    (b'{"execute":"query-version","id":true,"foo":1}',
     err("QMP input member 'foo' is unexpected", id_="true")),
    (b'{"execute":"query-version","control":{},"id":16}',
     err("QMP input member 'control' is unexpected", id_="16")),
    (b'{"foo":1,"arguments":[],"execute":"query-name"}',
     err("QMP input member 'arguments' must be an object")),
    (b'{"execute":"x","id":null,"zzz":1}', err("QMP input member 'zzz' is unexpected", id_="null")),
    (b'{"execute":"x","id":{"b":1,"a":[]},"q":1}',
     err("QMP input member 'q' is unexpected", id_='{"a": [], "b": 1}')),
    (b'{"exec-oob":"yank","id":3}', err("QMP input member 'exec-oob' is unexpected", id_="3")),
    (b'{"execute":"q","id":1}}', None),
])
def test_envelope(msg, reply):
    s = negotiated_session()
    out = drive(s, [msg])
    if reply is None:  # a command, then the stray brace
        assert out == [err("The command q has not been found", "CommandNotFound", "1"),
                       err("JSON parse error, expecting value")]
    else:
        assert out == [reply]


@pytest.mark.parametrize("msg, reply", [
    (b'{"execute":"x","exec-oob":"x","id":15}',
     err("QMP input member 'execute' clashes with 'exec-oob'", id_="15")),
    (b'{"exec-oob":1,"id":2}', err("QMP input member 'exec-oob' must be a string", id_="2")),
    (b'{"exec-oob":"query-version"}', err("The command query-version does not support OOB")),
    (b'{"exec-oob":"x-oob-test"}', err("The command x-oob-test has not been found",
                                        "CommandNotFound")),
])
def test_exec_oob_with_oob_enabled(msg, reply):
    s = negotiated_session(oob=True)
    assert drive(s, [msg]) == [reply]


def test_exec_oob_request():
    s = negotiated_session(oob=True)
    [req] = s.feed(b'{"exec-oob":"yank","arguments":{"instances":[]},"id":"y"}')
    assert req == Request("yank", {"instances": []}, "y", True, True)


def test_parse_errors_never_carry_an_id():
    s = negotiated_session()
    assert s.feed(b'{"execute":"x","id":1,}') == [err("JSON parse error, expecting value")]


def test_partial_feeds_give_the_same_replies():
    data = (b'{"execute":"query-version","id":1}{"execute":\n"nosuch",\n"id":3.5}[1]'
            b'"s"42 {"id":[1,]}\xff{"execute":"x","id":"\xc3\xa9"}{"execute":"x","bad":1}')
    whole = drive(negotiated_session(), [data])
    split = drive(negotiated_session(), [data[i:i + 1] for i in range(len(data))])
    assert whole == split
    assert len(whole) == 9
