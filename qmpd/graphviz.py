"""``qmpd-graph``: draw the block graph of any QMP server as Graphviz.

    qmpd-graph SOCKET [-T dot|svg|png] [-o FILE]
    qmpd-graph --from-json SAVED.json [-T ...] [-o FILE]

It connects to a QMP UNIX socket (qmpd, or a real QEMU started with
``-qmp unix:PATH,server=on,wait=off``), reads ``x-debug-query-block-graph``,
``query-named-block-nodes`` (driver, read-only, file name) and
``query-block-jobs`` (job types), and writes DOT; with ``-T svg`` or
``-T png`` it runs Graphviz's ``dot`` (which must be installed).  The type
defaults to the extension of ``-o`` and else to DOT on stdout.
``--save-json FILE`` keeps what was read, so that a picture can be redrawn
later with ``--from-json`` without a server.

The picture follows QEMU's scripts/render_block_graph.py: ellipses are
nodes (``name``, ``[driver]``, the file's base name for protocol nodes),
boxes are BlockBackends and jobs, and every edge is labelled with the
child's role and two permission strings, the permissions the parent takes
and the ones it shares, each as ``wrus`` (write, consistent-read,
write-unchanged, resize; ``_`` where absent).  In addition:

* read-only nodes are grey with ``read-only`` in their label, writable ones
  white with ``read-write``;
* implicit nodes, the filters a job inserts without a name from the user
  (an automatic ``#blockNNN`` name and a job-filter driver: commit_top,
  mirror_top, copy-on-read, copy-before-write), have a dashed outline, and
  links to them are dashed;
* frozen links are bold and red and labelled ``(frozen)``.

x-debug-query-block-graph says neither "implicit" nor "frozen", so both are
inferred.  Implicit is the rule above.  A ``backing`` or ``file`` link is
taken as frozen when its parent and its child are both attached to the
same job (a job holds every node of the chain it freezes: QEMU's commit
and stream jobs freeze the links between the nodes they list), or when its
parent is an implicit job filter and its child is attached to a job
(commit and stream freeze from their filter down, and the filter is not
attached to the job).  This matches commit and stream as QEMU 7.2 builds
them (checked against a running QEMU 7.2 block-commit); a frozen link
that no job holds is not shown as frozen, and a user-named filter node is
not taken as implicit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from typing import Any

JOB_FILTER_DRIVERS = frozenset({"commit_top", "mirror_top", "copy-on-read", "copy-before-write"})
_AUTO_NAME = re.compile(r"^#block[0-9]+$")

LEGEND = ("permissions: w write, r consistent-read,\\l"
          "u write-unchanged, s resize (_ = not held)\\l"
          "edge label: role, perm taken, perm shared\\l"
          "grey: read-only; dashed: implicit;\\l"
          "bold red: frozen (inferred)\\l")


class GraphError(Exception):
    """Something the user must fix (no server, a failed command, no dot)."""


def _cmd(sock: socket.socket, buf: list[bytes], name: str,
         args: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"execute": name}
    if args:
        msg["arguments"] = args
    sock.sendall(json.dumps(msg).encode() + b"\n")
    while True:
        reply = _read(sock, buf)
        if "event" not in reply:  # events are not ours to handle
            return reply


def _read(sock: socket.socket, buf: list[bytes]) -> dict[str, Any]:
    data = buf[0]
    while b"\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise GraphError("the QMP server closed the connection")
        data += chunk
    line, _, buf[0] = data.partition(b"\n")
    result: dict[str, Any] = json.loads(line)
    return result


def fetch(path: str, timeout: float = 10.0) -> dict[str, Any]:
    """Read the graph, the named nodes and the jobs from the QMP socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as e:
        raise GraphError(f"cannot connect to {path}: {e.strerror or e}") from None
    buf = [b""]
    try:
        try:
            greeting = _read(sock, buf)
        except TimeoutError:
            raise GraphError(f"no QMP greeting from {path} in {timeout:g} s (QEMU serves "
                             "one client at a time: is another one connected?)") from None
        if "QMP" not in greeting:
            raise GraphError(f"{path} does not speak QMP")
        _cmd(sock, buf, "qmp_capabilities")
        out: dict[str, Any] = {}
        for key, name, args in (("graph", "x-debug-query-block-graph", None),
                                ("nodes", "query-named-block-nodes", {"flat": True}),
                                ("jobs", "query-block-jobs", None)):
            reply = _cmd(sock, buf, name, args)
            if "error" in reply:
                if key == "jobs":
                    out[key] = []
                    continue
                raise GraphError(f"{name}: {reply['error'].get('desc')}")
            out[key] = reply["return"]
        return out
    finally:
        sock.close()


def _perm(arr: list[str]) -> str:
    # QEMU's render_block_graph.py notation.
    return "".join(c if p in arr else "_" for c, p in
                   (("w", "write"), ("r", "consistent-read"),
                    ("u", "write-unchanged"), ("s", "resize")))


def _q(text: str) -> str:
    """A DOT double-quoted string (\\n and \\l escapes are kept as DOT's)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') \
        .replace("\\\\n", "\\n").replace("\\\\l", "\\l") + '"'


def is_implicit(name: str, driver: str | None) -> bool:
    """An implicit node: a job filter the user did not name."""
    return bool(_AUTO_NAME.match(name)) and driver in JOB_FILTER_DRIVERS


def frozen_edges(graph: dict[str, Any], drivers: dict[str, str] | None = None
                 ) -> set[tuple[int, int, str]]:
    """(parent, child, name) of links inferred to be frozen (see the module doc)."""
    kinds = {n["id"]: n["type"] for n in graph["nodes"]}
    held: dict[Any, set[Any]] = {}
    for e in graph["edges"]:
        if kinds.get(e["parent"]) == "block-job":
            held.setdefault(e["parent"], set()).add(e["child"])
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    drivers = drivers or {}
    out: set[tuple[int, int, str]] = set()
    for e in graph["edges"]:
        if kinds.get(e["parent"]) != "block-driver" or e["name"] not in ("backing", "file"):
            continue
        both_held = any(e["parent"] in ids and e["child"] in ids for ids in held.values())
        # commit and stream freeze from their own filter node down, and the
        # filter itself is not attached to the job.
        from_filter = is_implicit(names[e["parent"]], drivers.get(names[e["parent"]])) \
            and any(e["child"] in ids for ids in held.values())
        if both_held or from_filter:
            out.add((e["parent"], e["child"], e["name"]))
    return out


def to_dot(data: dict[str, Any], title: str = "block graph", legend: bool = True) -> str:
    """DOT text of what :func:`fetch` returned."""
    graph = data["graph"]
    named = {n["node-name"]: n for n in data.get("nodes", [])}
    jobs = {j["device"]: j for j in data.get("jobs", [])}
    frozen = frozen_edges(graph, {k: v.get("drv") for k, v in named.items()})
    implicit_ids: set[Any] = set()
    lines = [f"digraph {_q(title)} {{",
             '  graph [rankdir=TB, fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9];']
    if legend:
        lines.append(f"  legend [shape=note, fontsize=9, label={_q(LEGEND)}];")
    for n in graph["nodes"]:
        nid, name = n["id"], n["name"]
        attrs: dict[str, str] = {}
        if n["type"] == "block-driver":
            info = named.get(name, {})
            drv = info.get("drv")
            label = f"{name}\\n[{drv or '?'}]"
            if drv == "file" and info.get("file"):
                label += "\\n" + os.path.basename(info["file"])
            ro = info.get("ro")
            if ro is not None:
                label += "\\nread-only" if ro else "\\nread-write"
            attrs["shape"] = "ellipse"
            attrs["style"] = "filled"
            attrs["fillcolor"] = "#dddddd" if ro else "white"
            if is_implicit(name, drv):
                implicit_ids.add(nid)
                attrs["style"] = "filled,dashed"
                attrs["fontcolor"] = "#555555"
                label += "\\n(implicit)"
        elif n["type"] == "block-job":
            job = jobs.get(name)
            label = f"{job['type']} job ({name})" if job else f"job {name}"
            attrs["shape"] = "box"
            attrs["style"] = "rounded"
        else:
            label = name or "unnamed blk"
            attrs["shape"] = "box"
        attrs["label"] = _q(label)
        lines.append(f"  n{nid} [" + ", ".join(f"{k}={v if k == 'label' else _q(v)}"
                                               for k, v in attrs.items()) + "];")
    for e in graph["edges"]:
        key = (e["parent"], e["child"], e["name"])
        label = f"{e['name']}\\l{_perm(e['perm'])}\\l{_perm(e['shared-perm'])}\\l"
        attrs = {}
        if key in frozen:
            label = f"{e['name']} (frozen)\\l{_perm(e['perm'])}\\l{_perm(e['shared-perm'])}\\l"
            attrs.update(style="bold", color="red", fontcolor="red")
        elif e["child"] in implicit_ids or e["parent"] in implicit_ids:
            attrs.update(style="dashed", color="#777777")
        attrs["label"] = _q(label)
        lines.append(f"  n{e['parent']} -> n{e['child']} ["
                     + ", ".join(f"{k}={v if k == 'label' else _q(v)}"
                                 for k, v in attrs.items()) + "];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, fmt: str) -> bytes:
    """Run Graphviz ``dot -T fmt``."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphError(f"-T {fmt} needs Graphviz's 'dot' (not found in PATH); "
                         "install graphviz or use -T dot")
    res = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True)
    if res.returncode != 0:
        raise GraphError(f"dot failed: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="qmpd-graph",
        description="Draw the block graph of a QMP server (qmpd or QEMU) with Graphviz.",
        epilog="Implicit nodes and frozen links are inferred (x-debug-query-block-graph "
               "does not report them); see the README.")
    p.add_argument("socket", nargs="?", help="QMP UNIX socket of qmpd or QEMU")
    p.add_argument("-T", dest="fmt", choices=("dot", "svg", "png"),
                   help="output type (default: from -o's extension, else dot)")
    p.add_argument("-o", dest="output", help="output file (default: stdout)")
    p.add_argument("--from-json", metavar="FILE",
                   help="draw from a file written by --save-json instead of a server")
    p.add_argument("--save-json", metavar="FILE", help="also save what was read, as JSON")
    p.add_argument("--title", default="block graph", help="graph title")
    p.add_argument("--no-legend", action="store_true", help="leave the legend out")
    a = p.parse_args(argv)
    if (a.socket is None) == (a.from_json is None):
        p.error("give a QMP socket or --from-json FILE (one of them)")
    fmt = a.fmt
    if fmt is None:
        ext = os.path.splitext(a.output or "")[1].lstrip(".").lower()
        fmt = ext if ext in ("svg", "png") else "dot"
    try:
        if a.from_json:
            with open(a.from_json) as f:
                data = json.load(f)
        else:
            data = fetch(a.socket)
        if a.save_json:
            with open(a.save_json, "w") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
        text = to_dot(data, a.title, legend=not a.no_legend)
        out = text.encode() if fmt == "dot" else render(text, fmt)
    except (GraphError, OSError, ValueError) as e:
        print(f"qmpd-graph: {e}", file=sys.stderr)
        return 1
    if a.output:
        with open(a.output, "wb") as f:
            f.write(out)
    else:
        sys.stdout.buffer.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
