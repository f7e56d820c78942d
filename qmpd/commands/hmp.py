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
"""

from __future__ import annotations

import io
import sys
from typing import Any

from qmpd.commands.registry import command
from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import Transaction
from qmpd.engine.node import Parent

QEMU_IO_HELP = ('qemu-io [-d] [device] "[command]" -- run a qemu-io command on a block device'
                "\n\t\t\t-d: [device] is a device ID rather than a drive ID or node name\n")
# qemu-io's permission names (qmpd.img.qemu_io.Command.perm) as engine bits.
PERM_BITS = {"write": perms.WRITE, "resize": perms.RESIZE}


def _get_str(p: str) -> tuple[str | None, str]:
    """monitor/hmp.c get_str: a word or a double-quoted string."""
    p = p.lstrip()
    if not p:
        return None, p
    if p[0] == '"':
        out = []
        i = 1
        while i < len(p) and p[i] != '"':
            if p[i] == "\\":
                i += 1
                c = p[i] if i < len(p) else ""
                i += 1
                esc = {"n": "\n", "r": "\r", "\\": "\\", "'": "'", '"': '"'}.get(c)
                if esc is None:
                    return None, p[i:]
                out.append(esc)
            else:
                out.append(p[i])
                i += 1
        if i >= len(p):
            return None, ""
        return "".join(out), p[i + 1:]
    i = 0
    while i < len(p) and not p[i].isspace():
        i += 1
    return p[:i], p[i:]


def _mon(text: str) -> str:
    return text.replace("\n", "\r\n")


def _qemu_io(daemon: Any, args: str) -> str:
    rest = args
    qdev = False
    stripped = rest.lstrip()
    if stripped.startswith("-"):
        if stripped[1:2] == "d":
            qdev = True
            rest = stripped[2:]
        else:
            return _mon(f"qemu-io: unsupported option -{stripped[1:2]}\n"
                        'Try "help qemu-io" for more information\n')
    device, rest = _get_str(rest)
    if device is None:
        return _mon('qemu-io: block device name expected\nTry "help qemu-io" for more information\n')
    cmd, rest = _get_str(rest)
    if cmd is None:
        return _mon('qemu-io: string expected\nTry "help qemu-io" for more information\n')
    if rest.strip():
        return _mon("qemu-io: extraneous characters at the end of line\n"
                    'Try "help qemu-io" for more information\n')
    g = daemon.graph
    dev_edge = None
    if qdev:
        # blk_by_qdev_id: the device's own BlockBackend (qmpd.commands.devices).
        from qmpd.commands.devices import qdev_backend

        dev_blk, err = qdev_backend(daemon, device)
        if dev_blk is None or dev_blk.edge is None:
            return _mon(f"Error: {err}\n")
        dev_edge = dev_blk.edge
        node = dev_edge.child
    else:
        found = g.nodes.get(device)
        if found is None:
            return _mon(f"Error: Cannot find device='' nor node-name='{device}'\n")
        node = found

    from qmpd.engine.io import NodeIO
    from qmpd.img.qemu_io import QemuIo, find_command

    tx = Transaction()
    blk = Parent("qemu-io")
    try:
        if dev_edge is not None:
            edge = dev_edge
            old_perm = edge.perm
            tx.on_abort(lambda: setattr(dev_edge, "perm", old_perm))
        else:
            edge = g.attach(blk, node, "root", 0, tx)
        words = cmd.split()
        qcmd = find_command(words[0]) if words else None
        need = 0
        for name in qcmd.perm if qcmd is not None else ():
            need |= PERM_BITS[name]
        if need & ~edge.perm:
            edge.perm |= need
            try:
                g.refresh_perms([node], tx)
            except BlockError as e:
                return _mon(e.desc + "\n")
        out = io.StringIO()
        mon = io.StringIO()
        qio = QemuIo(NodeIO(g, node), out, out)
        qio.monitor = mon
        qio.run(cmd)
    finally:
        tx.abort()      # the temporary BlockBackend goes away again
    monitor_text = _mon(mon.getvalue())
    text = out.getvalue()
    if daemon.hmp_output == "stdout":
        sys.stdout.write(text)
        sys.stdout.flush()
        return monitor_text
    return monitor_text + text


def _info(daemon: Any, sub: str, line: str) -> str:
    if sub == "version":
        major, minor, micro = daemon.qemu_version
        return _mon(f"{major}.{minor}.{micro}{daemon.package}\n")
    if sub == "block":
        # The BlockBackends of devices (qmpd.commands.devices); none: "".
        from qmpd.commands.devices import hmp_info_block

        return _mon(hmp_info_block(daemon))
    return _mon(f"unknown command: '{line}'\n")


@command("human-monitor-command")
def human_monitor_command(daemon: Any, args: dict) -> str:
    if "cpu-index" in args:
        from qmpd.commands.errors import QMPError

        raise QMPError("Parameter 'cpu-index' expects a CPU number")
    line = args["command-line"]
    p = line.lstrip()
    name_end = 0
    while name_end < len(p) and p[name_end] != "/" and not p[name_end].isspace():
        name_end += 1
    name = p[:name_end]
    if not name:
        return ""
    head = line[: len(line) - len(p) + name_end]
    rest = p[name_end:]
    if name == "qemu-io":
        return _qemu_io(daemon, rest)
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
