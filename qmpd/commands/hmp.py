"""human-monitor-command: the HMP commands clients use through QMP.

``qemu-io [-d] <node> "<command>"`` runs the qemu-io interpreter of
:mod:`qmpd.img.qemu_io` on a temporary BlockBackend over the node, taking
the permissions the command needs first, as QEMU's ``hmp_qemu_io`` does.
``info version``, ``info block`` and ``help qemu-io`` answer as QEMU's; any
other command line gets QEMU's answer for an unknown command.

QEMU prints qemu-io's results on its own stdout and returns ``""``; qmpd
returns them in the reply, where a client can see them, unless the daemon
runs with ``--hmp-output stdout``.  Monitor text uses ``\\r\\n`` line ends;
qemu-io's own output keeps ``\\n`` as on QEMU's stdout.

A qemu-io command runs in steps (:class:`~qmpd.commands.stepwise.Stepwise`):
the server serves other clients between its chunks of data.  Its output is
kept already escaped for the JSON reply and may not grow past the daemon's
``max_output`` (``--max-output``): a dump that would is refused before it
starts, with a ``GenericError`` saying so.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Generator
from typing import Any

from qmpd.commands.devices import hmp_info_block, qdev_backend
from qmpd.commands.errors import QMPError
from qmpd.commands.registry import command
from qmpd.commands.stepwise import Stepwise
from qmpd.cstrings import cstring
from qmpd.engine import perms
from qmpd.engine.blockacct import BlockAcctStats, Cookie
from qmpd.engine.devices.model import BlockBackend
from qmpd.engine.drive_jobs import skip_filters, skip_implicit_filters
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import Transaction
from qmpd.engine.io import NodeIO
from qmpd.engine.layer_commit import commit_layer
from qmpd.engine.node import Parent
from qmpd.img.qemu_io import OutputTooLarge, QemuIo, find_command
from qmpd.img.qemu_io_reopen import ReopenFailed
from qmpd.protocol.encode import PreencodedParts, quote

QEMU_IO_HELP = ('qemu-io [-d] [device] "[command]" -- run a qemu-io command on a block device'
                "\n\t\t\t-d: [device] is a device ID rather than a drive ID or node name\n")
# qemu-io's permission names (qmpd.img.qemu_io.Command.perm) as engine bits.
PERM_BITS = {"write": perms.WRITE, "resize": perms.RESIZE}
# monitor_parse_arguments() reads each string argument into a 1024-byte
# buffer: get_str() keeps the first 1023 bytes and drops the rest silently.
GET_STR_MAX = 1023
# Characters a JSON string carries as they are, and newlines (the rest is escaped).
_JSON_UNSAFE = re.compile(r'[^ !#-\[\]-~\n]')


def _c_buffer(text: str) -> str:
    """``text`` as it comes out of get_str()'s buffer: at most GET_STR_MAX
    bytes of its C form (a multi-byte character cut in two reads as U+FFFD)."""
    if len(text) <= GET_STR_MAX // 4:
        return text
    raw = cstring(text)
    if len(raw) <= GET_STR_MAX:
        return text
    return raw[:GET_STR_MAX].replace(b"\xc0\x80", b"\0").decode("utf-8", "replace")


# qemu_isspace(): C's isspace() in the C locale (Python's also takes \x1c-\x1f).
_SPACE = " \t\n\v\f\r"
_WORD = re.compile(r"[^ \t\n\v\f\r]*")
# get_command_name(): up to a space or "/".
_COMMAND_NAME = re.compile(r"[^/ \t\n\v\f\r]*")
_QUOTED_STOP = re.compile(r'["\\]')
_ESCAPES = {"n": "\n", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def _get_str(p: str) -> tuple[str | None, str]:
    """monitor/hmp.c get_str: a word or a double-quoted string (as much of it
    as its 1024-byte buffer keeps).  Scans by regular expression: a command
    line may be tens of megabytes."""
    p = p.lstrip(_SPACE)
    if not p:
        return None, p
    if p[0] != '"':
        end = _WORD.match(p).end()  # type: ignore[union-attr]
        return _c_buffer(p[:end]), p[end:]
    out: list[str] = []
    kept = 0            # characters kept: enough once past the buffer's size
    i = 1
    while True:
        stop = _QUOTED_STOP.search(p, i)
        if stop is None:
            return None, ""
        j = stop.start()
        if kept <= GET_STR_MAX:
            out.append(p[i:j][: GET_STR_MAX + 1 - kept])
            kept += len(out[-1])
        if p[j] == '"':
            return _c_buffer("".join(out)), p[j + 1:]
        esc = _ESCAPES.get(p[j + 1 : j + 2])
        if esc is None:
            return None, p[j + 2:]
        if kept <= GET_STR_MAX:
            out.append(esc)
            kept += 1
        i = j + 2


def _mon(text: str) -> str:
    return text.replace("\n", "\r\n")


class _ReplyText:
    """qemu-io's output as it will travel in the JSON reply: escaped when
    written, counted against the reply limit."""

    def __init__(self, limit: int | None) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit

    def write(self, text: str) -> int:
        # Dumps and reports are plain ASCII lines: only their newlines need
        # escaping, which str.replace does at memory speed.
        if _JSON_UNSAFE.search(text) is None:
            escaped = text.replace("\n", "\\n")
        else:
            escaped = quote(text)[1:-1]
        self.size += len(escaped)
        if self.limit is not None and self.size > self.limit:
            raise _too_large(self.size, self.limit)
        self.parts.append(escaped.encode("ascii"))
        return len(text)

    def flush(self) -> None:
        pass


def _too_large(size: int, limit: int) -> QMPError:
    return QMPError.of("hmp.reply-too-large", size=size, limit=limit)


def _reads_change_data(node: Any) -> bool:
    """Whether reading ``node`` writes somewhere below it (copy-on-read)."""
    seen: set[int] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.driver.name == "copy-on-read":
            return True
        todo.extend(e.child for e in n.children)
    return False


def _bad_args(command: str, what: str) -> str:
    """monitor_parse_arguments' failure: what is wrong, then the hint."""
    return _mon(f'{command}: {what}\nTry "help {command}" for more information\n')


def _qemu_io(daemon: Any, args: str) -> str | Stepwise:
    rest = args
    qdev = False
    stripped = rest.lstrip(_SPACE)
    if stripped.startswith("-"):
        if stripped[1:2] == "d":
            qdev = True
            rest = stripped[2:]
        else:
            return _bad_args("qemu-io", f"unsupported option -{stripped[1:2]}")
    device, rest = _get_str(rest)
    if device is None:
        return _bad_args("qemu-io", "block device name expected")
    cmd, rest = _get_str(rest)
    if cmd is None:
        return _bad_args("qemu-io", "string expected")
    if rest.strip(_SPACE):
        return _bad_args("qemu-io", "extraneous characters at the end of line")
    g = daemon.graph
    dev_edge = None
    if qdev:
        # blk_by_qdev_id: the device's own BlockBackend (qmpd.commands.devices).
        dev_blk, err = qdev_backend(daemon, device)
        if dev_blk is None or dev_blk.edge is None:
            return _mon(f"Error: {daemon.profile.render(err)}\n")
        dev_edge = dev_blk.edge
        node = dev_edge.child
    elif g.named_backend(device) is not None and g.named_backend(device).children:
        # blk_by_name: a -drive's BlockBackend is used as it is.
        dev_edge = g.named_backend(device).children[0]
        node = dev_edge.child
    else:
        found = g.nodes.get(device)
        if found is None:
            text = daemon.profile.render(f"Cannot find device='' nor node-name='{device}'")
            return _mon(f"Error: {text}\n")
        node = found

    words0 = cmd.split()
    if words0 and words0[0] in _BREAK_COMMANDS:
        text = _breakpoint_command(daemon, node, words0)
        if daemon.hmp_output == "stdout":
            sys.stdout.write(text)
            sys.stdout.flush()
            return _mon("")
        return text

    words = cmd.split()
    qcmd = find_command(words[0]) if words else None
    need = 0
    for name in qcmd.perm if qcmd is not None else ():
        need |= PERM_BITS[name]
    writes = bool(need) or _reads_change_data(node)
    return Stepwise(_qemu_io_steps(daemon, node, dev_edge, cmd, need), writes=writes)


class _BackendAccounting:
    """qemu-io's block_acct_* calls on a BlockBackend's stats, timed by the
    daemon's job clock."""

    def __init__(self, stats: BlockAcctStats, clock: Any) -> None:
        self.stats = stats
        self.clock = clock

    def start(self, kind: str, nbytes: int) -> Cookie:
        return self.stats.start(kind, nbytes, self.clock.now())

    def done(self, cookie: Cookie) -> None:
        self.stats.done(cookie, self.clock.now(), self.clock.virtual)

    def failed(self, cookie: Cookie) -> None:
        self.stats.failed(cookie, self.clock.now(), self.clock.virtual)

    def invalid(self, kind: str) -> None:
        self.stats.invalid(kind, self.clock.now())


class _MonitorNodeIO(NodeIO):
    """A node as HMP's qemu-io sees it: through a BlockBackend (a drive's or
    device's own, else a temporary one), errors in the release's words."""

    def __init__(self, daemon: Any, node: Any, edge: Any, blk: BlockBackend | None) -> None:
        super().__init__(daemon.graph, node, edge)
        self._profile = daemon.profile
        self._blk = blk

    def write_cache(self) -> tuple[bool, bool]:
        # A temporary BlockBackend has the write cache on (blk_new) and no device.
        blk = self._blk
        if blk is None:
            return True, False
        return blk.write_cache, blk.device is not None

    def set_write_cache(self, enabled: bool) -> None:
        if self._blk is not None:
            self._blk.write_cache = enabled

    def reopen(self, options: dict) -> None:
        try:
            super().reopen(options)
        except BlockError as e:
            raise ReopenFailed(self._profile.render_all(e.parts)) from None


def _qemu_io_steps(daemon: Any, node: Any, dev_edge: Any, cmd: str,
                   need: int) -> Generator[None, None, str | PreencodedParts]:
    """hmp_qemu_io(): a temporary BlockBackend on ``node`` (or the device's
    own), the permissions the command needs, the command, a step per chunk."""
    g = daemon.graph
    to_stdout = daemon.hmp_output == "stdout"
    limit = daemon.max_output
    # A node's temporary BlockBackend drains the node as often as the release
    # does before the command and when it goes (blk_unref, blk_remove_bs):
    # jobs there pause and resume (Profile.qemu_io_drains_before/_after).
    drain = g.drain_hook if dev_edge is None else None
    if drain is not None:
        for _ in range(daemon.profile.qemu_io_drains_before):
            drain([node], True)
            drain([node], False)
    tx = Transaction()
    blk = Parent("qemu-io")
    mon = io.StringIO()
    out: Any = sys.stdout if to_stdout else _ReplyText(limit)
    try:
        if dev_edge is not None:
            edge = dev_edge
            old_perm = edge.perm
            tx.on_abort(lambda: setattr(dev_edge, "perm", old_perm))
        else:
            edge = g.attach(blk, node, "root", 0, tx)
        if need & ~edge.perm:
            edge.perm |= need
            try:
                g.refresh_perms([node], tx, changed=edge)
            except BlockError as e:
                return _mon(daemon.profile.render_all(e.parts) + "\n")
        profile = daemon.profile
        blk_parent = dev_edge.parent if dev_edge is not None else None
        target = _MonitorNodeIO(daemon, node, edge,
                                blk_parent if isinstance(blk_parent, BlockBackend) else None)
        qio = QemuIo(target, out, out, help_rows=profile.qemu_io_help,
                     dump_prefix_on_monitor=profile.qemu_io_dump_prefix_on_monitor,
                     truncate_prealloc=profile.qemu_io_truncate_prealloc,
                     strtosz_negative_erange=profile.strtosz_negative_erange)
        qio.monitor = mon
        if dev_edge is not None and isinstance(dev_edge.parent, BlockBackend):
            # A -drive's or device's BlockBackend keeps what aio_* account.
            qio.accounting = _BackendAccounting(dev_edge.parent.stats, daemon.jobs.time)
        if limit is not None and not to_stdout:
            qio.output_limit = limit
        try:
            yield from qio.run_steps(cmd)
        except OutputTooLarge as e:
            raise _too_large(e.size, e.limit) from None
    finally:
        tx.abort()      # the temporary BlockBackend goes away again
        if drain is not None and node.alive:
            for _ in range(daemon.profile.qemu_io_drains_after):
                drain([node], True)
                drain([node], False)
    monitor_text = _mon(mon.getvalue())
    if to_stdout:
        sys.stdout.flush()
        return monitor_text
    if not out.parts:
        return monitor_text
    # The reply's string: its pieces are sent as they are, never joined.
    return PreencodedParts([quote(monitor_text)[:-1].encode("ascii"), *out.parts, b'"'])


def _commit(daemon: Any, args: str) -> str:
    """hmp_commit: ``commit DEVICE`` (a drive's node, implicit filters
    skipped) or ``commit all`` (every BlockBackend's node with a backing
    file, filters skipped), each a bdrv_commit (qmpd.engine.layer_commit)."""
    device, rest = _get_str(args)
    if device is None:
        return _bad_args("commit", "block device name expected")
    if rest.strip(_SPACE):
        return _bad_args("commit", "extraneous characters at the end of line")
    g = daemon.graph
    out: list[str] = []

    def report(e: BlockError) -> None:
        out.append(daemon.profile.render_all(e.parts) + "\n")

    ret = 0
    if device == "all":
        for blk in list(g.backends):
            top = skip_filters(g, blk.children[0].child) if blk.children else None
            if top is None or top.driver.is_filter or top.backing is None:
                continue
            ret = commit_layer(g, top, report)
            if ret < 0:
                break
    else:
        blk = g.named_backend(device)
        if blk is None:
            return _mon(f"Device '{device}' not found\n")
        if not blk.children:
            return _mon(f"Device '{device}' has no medium\n")
        top = skip_implicit_filters(g, blk.children[0].child)
        assert top is not None
        ret = commit_layer(g, top, report)
    if ret < 0:
        out.append(f"'commit' error for '{device}': {os.strerror(-ret)}\n")
    return _mon("".join(out))


def _info(daemon: Any, sub: str, line: str) -> str:
    if sub == "version":
        major, minor, micro = daemon.qemu_version
        return _mon(f"{major}.{minor}.{micro}{daemon.package}\n")
    if sub == "block":
        # The BlockBackends of devices (qmpd.commands.devices); none: "".
        return _mon(hmp_info_block(daemon))
    return _mon(f"unknown command: '{line}'\n")


@command("human-monitor-command")
def human_monitor_command(daemon: Any, args: dict) -> str:
    if "cpu-index" in args:
        raise QMPError.of("hmp.cpu-index-invalid")
    line = args["command-line"]
    p = line.lstrip(_SPACE)
    name_end = _COMMAND_NAME.match(p).end()  # type: ignore[union-attr]
    name = p[:name_end]
    if not name:
        return ""
    head = line[: len(line) - len(p) + name_end]
    rest = p[name_end:]
    if name == "qemu-io":
        return _qemu_io(daemon, rest)
    if name == "commit":
        return _commit(daemon, rest)
    if name == "info":
        sub, _ = _get_str(rest)
        if sub is None:
            return ""
        return _info(daemon, sub, head + " " + sub)
    if name == "help" or name == "?":
        sub, _ = _get_str(rest)
        if sub == "qemu-io":
            return _mon(QEMU_IO_HELP)
    return _mon(f"unknown command: '{head}'\n")


# qemu-io's blkdebug commands (break EVENT TAG, remove_break TAG, resume TAG,
# wait_break TAG), as block/blkdebug.c: a breakpoint is a one-shot rule; the
# first request of a block job that reaches the blkdebug node is suspended
# there (qmpd.engine.jobs.state.Job.hit_breakpoint) until ``resume`` (one
# request of the tag) or ``remove_break`` (the tag's rules and requests).
_BREAK_COMMANDS = ("break", "remove_break", "resume", "wait_break")
_BREAK_ARGS = {"break": 2, "remove_break": 1, "resume": 1, "wait_break": 1}


def _breakpoint_command(daemon: Any, node: Any, words: list[str]) -> str:
    name = words[0]
    want = _BREAK_ARGS[name]
    if len(words) - 1 != want:
        return (f"bad argument count {len(words) - 1} to {name}, expected {want} "
                "arguments\n")
    # bdrv_debug_*: down the primary children to the first blkdebug node
    dbg = node
    while dbg is not None and dbg.driver.name != "blkdebug":
        dbg = dbg.driver.filtered(dbg) if dbg.driver.is_filter else (
            dbg.file.child if dbg.file is not None else None)
    if dbg is None or not isinstance(dbg.state, dict):
        if name == "wait_break":
            return ""       # bdrv_debug_is_suspended is false: QEMU polls forever
        what = {"break": "Could not set breakpoint", "remove_break":
                f"Could not remove breakpoint {words[1]}",
                "resume": "Could not resume request"}[name]
        return f"{what}: Operation not supported\n"
    st = dbg.state
    rules: list[tuple[str, str]] = st.setdefault("breakpoints", [])
    suspended: list[tuple[str, Any]] = st.setdefault("suspended", [])
    say = not daemon.qtest_enabled
    if name == "break":
        events = daemon.schema.set.types.get("BlkdebugEvent", {}).get("enum", ())
        if words[1] not in events:
            return "Could not set breakpoint: No such file or directory\n"
        rules.insert(0, (words[1], words[2]))
        return ""
    tag = words[1]
    if name == "wait_break":
        out = ""
        if not any(t == tag for t, _ in suspended):
            # the jobs' next requests reach the node: one of them stops there
            for job in list(getattr(daemon.jobs, "jobs", ())):
                if job.at_breakpoint() or job.co is None or job.deferred:
                    continue
                if dbg in job._blkdebug_below() and any(t == tag for _, t in rules):
                    got = job.hit_breakpoint()
                    if got is not None and say:
                        out += f"blkdebug: Suspended request '{got}'\n"
                    if any(t == tag for t, _ in suspended):
                        break
        return out
    out = ""
    found = False
    if name == "remove_break":
        kept = [r for r in rules if r[1] != tag]
        found = len(kept) != len(rules)
        rules[:] = kept
    resumed = [e for e in suspended if e[0] == tag]
    if name == "resume":
        resumed = resumed[:1]
    for e in resumed:
        suspended.remove(e)
        if say:
            out += f"blkdebug: Resuming request '{tag}'\n"
    if not found and not resumed:
        if name == "remove_break":
            return f"Could not remove breakpoint {tag}: No such file or directory\n"
        return "Could not resume request: No such file or directory\n"
    mgr = daemon.jobs
    if getattr(mgr, "wakeup", None) is not None:
        mgr.wakeup()
    return out
