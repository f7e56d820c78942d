"""The ``blkdebug`` driver (QEMU 7.2 block/blkdebug.c): a filter whose
``inject-error`` and ``set-state`` rules make I/O fail on purpose.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.base import Driver, g_writable, size_opt
from qmpd.engine.errors import BlockError
from qmpd.engine.hostfiles import os_path
from qmpd.engine.node import Edge, Node, protocol_of

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class BlkdebugDriver(Driver):
    name = "blkdebug"
    protocol = True
    is_filter = True
    strong = ("config", "inject-error.", "set-state.", "align", "max-transfer",
              "opt-write-zero", "max-write-zero", "opt-discard", "max-discard")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        fname = opts.pop("filename", None)
        if fname is not None:
            # blkdebug_parse_filename: "blkdebug:[config]:image".
            if not fname.startswith("blkdebug:"):
                raise BlockError("File name string must start with 'blkdebug:'")
            config, sep, image = fname[len("blkdebug:"):].partition(":")
            if not sep:
                raise BlockError("Image name expected")
            if config:
                opts.setdefault("config", config)
            if image and "image" not in opts and not any(k.startswith("image.") for k in opts):
                proto = protocol_of(image)
                opts["image.driver"] = proto
                if proto == "file":
                    opts["image.filename"] = image
        config = opts.get("config")
        from_file: list[tuple[str, dict]] = []
        if config is not None:
            try:
                with open(os_path(config), "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError as e:
                raise BlockError.of("blkdebug.could-not-read-blkdebug-config",
                                    error=os.strerror(e.errno or errno.EIO)) from None
            from_file = parse_config(text)
        bits = {n: 1 << i for i, n in enumerate(perms.NAMES)}
        take = 0
        unshare = 0
        for k, v in opts.items():
            if k.startswith("take-child-perms."):
                take |= bits.get(v, 0)
            elif k.startswith("unshare-child-perms."):
                unshare |= bits.get(v, 0)
        node.state = {"take": take, "unshare": unshare, "rules": self._rules(opts, from_file),
                      "active": [], "state": 1}
        g.open_and_attach(node, opts, "image", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        align = size_opt("align", opts.get("align", 0))
        if align and (align >= 0x7FFFFFFF or align & (align - 1)):
            raise BlockError.of("blkdebug.cannot-meet-constraints-align", align=align)
        align = max(align, 1)
        prev = align
        for key, base in (("max-transfer", None), ("opt-write-zero", None),
                          ("max-write-zero", "opt-write-zero"), ("opt-discard", None),
                          ("max-discard", "opt-discard")):
            v = size_opt(key, opts.get(key, 0))
            a = max(size_opt(base, opts.get(base, 0)), align) if base else align
            if v and (v >= 0x7FFFFFFF or v % a):
                raise BlockError.of("blkdebug.cannot-meet-constraints", key=key, v=v)
        del prev

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p, s = perms.default(edge.role, g_writable(node), perm, shared)
        st = node.state or {}
        return p | st.get("take", 0), s & ~st.get("unshare", 0)

    IOTYPES = ("read", "write", "write-zeroes", "discard", "flush", "block-status")

    def _rules(self, opts: dict, from_file: list[tuple[str, dict]]) -> list[dict]:
        """inject-error and set-state rules (blkdebug's read_config and
        add_rule): the config file's sections, then the options', all
        inject-error rules before the set-state ones."""
        groups: list[tuple[str, dict]] = list(from_file)
        for kind in ("inject-error", "set-state"):
            i = 0
            while f"{kind}.{i}.event" in opts:
                p = f"{kind}.{i}."
                groups.append((kind, {k[len(p):]: v for k, v in opts.items()
                                      if k.startswith(p)}))
                i += 1
        rules: list[dict] = []
        for kind in ("inject-error", "set-state"):
            for gkind, o in groups:
                if gkind != kind:
                    continue
                r = {"action": kind, "event": o["event"], "state": int(o.get("state", 0))}
                if kind == "inject-error":
                    sector = int(o.get("sector", -1))
                    iotype = o.get("iotype")
                    r.update(errno=int(o.get("errno", errno.EIO)),
                             once=_flag(o.get("once", False)),
                             immediately=_flag(o.get("immediately", False)),
                             offset=-1 if sector == -1 else sector * 512,
                             iotypes=(iotype,) if iotype else self.IOTYPES[:5])
                else:
                    r["new_state"] = int(o.get("new_state", 0))
                rules.append(r)
        return rules

    def debug_event(self, node: Node, event: str) -> None:
        """blkdebug_debug_event: activate inject rules, change state."""
        st = node.state
        new_state = st["state"]
        injected = 0
        for r in st["rules"]:
            if r["event"] != event or (r["state"] and r["state"] != st["state"]):
                continue
            if r["action"] == "inject-error":
                injected += 1
                if injected == 1:
                    st["active"] = []
                st["active"].insert(0, r)
            else:
                new_state = r["new_state"]
        st["state"] = new_state

    def rule_check(self, node: Node, offset: int, length: int, iotype: str) -> None:
        st = node.state
        for r in st["active"]:
            off = r["offset"]
            if (off == -1 or (length and offset <= off < offset + length)) \
                    and iotype in r["iotypes"]:
                break
        else:
            return
        if not r["errno"]:
            return
        if r["once"]:
            st["active"].remove(r)
            st["rules"].remove(r)
        raise OSError(r["errno"], os.strerror(r["errno"]))

    def flush_to_disk(self, g: BlockGraph, node: Node) -> None:
        """blkdebug_co_flush: the flush rules, then a flush of the image."""
        self.rule_check(node, 0, 0, "flush")
        child = self.primary(node)
        if child is not None:
            g.flush(child)

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        self.rule_check(node, offset, length, "read")
        return super().read(g, node, offset, length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        self.rule_check(node, offset, len(data), "write")
        super().write(g, node, offset, data)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        self.rule_check(node, offset, length, "write-zeroes")
        super().write_zeroes(g, node, offset, length, unmap)

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        self.rule_check(node, offset, length, "discard")
        super().discard(g, node, offset, length)

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        return None

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        prim = self.primary(node)
        child_exact = g.filename_info(prim)[1] if prim else ""
        if not child_exact:
            return ""
        if any(k not in ("config", "image", "x-image", "driver") for k in full_opts):
            return ""
        return f"blkdebug:{node.options.get('config', '')}:{child_exact}"


def _flag(v: object) -> bool:
    """A boolean option, typed (QMP) or as text (a config file's "on")."""
    if isinstance(v, str):
        return v in ("on", "yes", "true", "y")
    return bool(v)


def parse_config(text: str) -> list[tuple[str, dict]]:
    """qemu_config_parse: ``[inject-error]`` / ``[set-state]`` sections of
    ``key = "value"`` lines (comments start with #); other sections are
    ignored, as blkdebug's config groups have only these two."""
    out: list[tuple[str, dict]] = []
    current: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            name = line[1:].split("]", 1)[0].split()[0].strip('"') if "]" in line else ""
            current = {} if name in ("inject-error", "set-state") else None
            if current is not None:
                out.append((name, current))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BlockError(f"parse error: {line}")
        if current is not None:
            current[key.strip()] = value.strip().strip('"')
    return out
