"""QEMU's command line beyond the monitor: help probes and startup options.

Test harnesses (QEMU's iotests above all) launch QEMU with much more than a
monitor: they probe the binary (``-machine help``, ``-M none -device help``,
``-drive format=help``), and give block nodes, devices and objects on the
command line (``-blockdev``, ``-drive``, ``-device``, ``-object``).  This
module turns those options into what qmpd does with them:

* the help probes print what QEMU prints, listing only what qmpd emulates;
* each startup option becomes a :class:`StartupItem`, a QMP command the
  server runs before any monitor is served, in QEMU's order (objects, then
  ``-blockdev``, then ``-drive``, then devices).  A failing one stops qmpd
  with QEMU's ``OPTION: message`` and exit status 1, as QEMU does.

Option values use QEMU's two syntaxes: JSON (``-blockdev '{"driver": ...}'``)
or keyval (``driver=qcow2,file.driver=file,file.filename=a.img``, ``,,`` for
a literal comma).  Keyval values are strings; as QEMU's keyval input visitor
does, they are read as the type the schema wants there (see
:func:`typed_keyval`).

Kept free of heavy imports (the schema is loaded only to type keyval options).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any


class UsageError(Exception):
    """A command line qmpd cannot honour; the text is shown to the user."""


def split_qemu_opts(text: str) -> list[str]:
    """Split a QEMU option string at commas; ``,,`` stands for a literal comma."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ",":
            if text[i + 1:i + 2] == ",":
                cur.append(",")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def qemu_opts(text: str, firstname: str | None = None) -> tuple[dict[str, str], list[str]]:
    """QemuOpts parsing (``-drive``, and ``-device`` unless it is JSON):
    flat keys, string values, the last of a repeated key wins.  With
    ``firstname`` a first option without ``=`` is its value (``-device
    virtio-blk-pci,...``); any other bare name is a short-form boolean
    (``ro``: on, ``noro``: off), which QEMU warns about: the warnings are
    returned as QEMU prints them (get_opt_name_value)."""
    args: dict[str, str] = {}
    warnings: list[str] = []
    for i, part in enumerate(split_qemu_opts(text)):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq and i == 0 and firstname is not None:
            key, value = firstname, part
        elif not eq:
            prefix = ""
            if key.startswith("no"):
                key, value, prefix = key[2:], "off", "no"
            else:
                value = "on"
            if key not in ("help", "?"):
                hint = (f"nodelay={'on' if prefix else 'off'}" if key == "delay"
                        else f"{key}={value}")
                warnings.append(f"warning: short-form boolean option '{prefix}{key}' "
                                f"deprecated\nPlease use {hint} instead")
        args[key] = value
    return args, warnings


class StartupItem:
    """One command-line option as the QMP command that does what it asks."""

    __slots__ = ("where", "command", "args", "keyval", "warnings")

    def __init__(self, where: str, command: str, args: dict[str, Any],
                 keyval: bool = False, warnings: list[str] | None = None) -> None:
        self.where = where          # "-blockdev driver=...": for error messages
        # blockdev-add, device_add, object-add, or the command-line forms
        # "drive" and "device" (QemuOpts strings)
        self.command = command
        self.args = args
        self.keyval = keyval        # values are keyval strings, typed at startup
        self.warnings = warnings or []  # what QEMU warns about while parsing it

    def __repr__(self) -> str:
        return f"StartupItem({self.where!r}, {self.command!r}, {self.args!r})"


# ---------------------------------------------------------------------------
# help probes

def machine_help(version: tuple[int, int, int]) -> str:
    """``-machine help``: the pc machine qmpd models (the default) and none."""
    pc = f"pc-i440fx-{version[0]}.{version[1]}"
    desc = "Standard PC (i440FX + PIIX, 1996)"
    return ("Supported machines are:\n"
            f"{'pc':<20} {desc} (alias of {pc})\n"
            f"{pc:<20} {desc} (default)\n"
            f"{'none':<20} empty machine\n")


# The device models device_add knows (qmpd.commands.devices), as QEMU 7.2
# lists them; only the storage category has any.
_DEVICE_LINES = (
    'name "ide-cd", bus IDE, desc "virtual IDE CD-ROM"',
    'name "ide-hd", bus IDE, desc "virtual IDE disk"',
    'name "scsi-hd", bus SCSI, desc "virtual SCSI disk"',
    'name "virtio-blk-device", bus virtio-bus',
    'name "virtio-blk-pci", bus PCI, alias "virtio-blk"',
    'name "virtio-scsi-device", bus virtio-bus',
    'name "virtio-scsi-pci", bus PCI, alias "virtio-scsi"',
)


def device_help() -> str:
    return "Storage devices:\n" + "\n".join(_DEVICE_LINES) + "\n"


# The block drivers qmpd's engine implements (qmpd.engine.drivers).
FORMATS = ("blkdebug", "blkverify", "compress", "copy-on-read", "file", "null-aio",
           "null-co", "preallocate", "qcow2", "quorum", "raw", "throttle")


def format_help() -> str:
    names = " ".join(FORMATS)
    return f"Supported formats: {names}\nSupported formats (read-only): {names}\n"


def _is_help(value: str) -> bool:
    return value in ("help", "?")


def help_probe(argv: list[str], version: tuple[int, int, int]) -> str | None:
    """The text a help probe prints, or None when ``argv`` asks for no help."""
    for i, arg in enumerate(argv[:-1]):
        opt = "-" + arg.lstrip("-")
        value = argv[i + 1]
        first = split_qemu_opts(value)[0]
        if opt in ("-machine", "-M") and (_is_help(first) or "type=help" in value.split(",")):
            return machine_help(version)
        if opt == "-device" and (_is_help(first) or "driver=help" in value.split(",")):
            return device_help()
        if opt == "-drive" and "format=help" in split_qemu_opts(value):
            return format_help()
    return None


# ---------------------------------------------------------------------------
# keyval

def keyval(text: str, implied: str | None = None) -> dict[str, Any]:
    """QEMU's keyval_parse: ``a.b=v,c=w`` as a nested dict of strings.

    ``implied`` names the key of a first element without ``=`` (``-object
    iothread,id=x`` has qom-type ``iothread``).  Keys made only of digits
    at one level turn that level into a list, as QEMU's list syntax.
    """
    out: dict[str, Any] = {}
    for n, part in enumerate(split_qemu_opts(text)):
        if part == "" and n:
            continue
        key, eq, value = part.partition("=")
        if not eq:
            if n == 0 and implied is not None:
                key, value = implied, part
            else:
                raise UsageError(f"Expected '=' after parameter '{part}'")
        node = out
        *path, last = key.split(".")
        for p in path:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise UsageError(f"Parameters '{p}.*' used inconsistently")
            node = nxt
        if isinstance(node.get(last), dict):
            raise UsageError(f"Parameters '{key}.*' used inconsistently")
        node[last] = value
    return _listify(out)


def _listify(d: Any) -> Any:
    if not isinstance(d, dict):
        return d
    d = {k: _listify(v) for k, v in d.items()}
    if d and all(k.isdigit() for k in d):
        return [d[k] for k in sorted(d, key=int)]
    return d


_SIZE_SUFFIX = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
                "p": 1 << 50, "e": 1 << 60}
_TYPE_ERR = re.compile(r"Invalid parameter type for '([^']*)', expected: (\w+)")
_UINT_ERR = re.compile(r"Parameter '([^']*)' expects uint64")


def _as_number(text: str, what: str) -> int | float:
    m = re.fullmatch(r"\s*(-?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?))\s*([bBkKmMgGtTpPeE]?)",
                     text)
    if m is None:
        raise UsageError(f"Parameter '{what}' expects a number")
    num, suffix = m.groups()
    value: int | float = float(num) if "." in num else int(num, 0)
    value = value * _SIZE_SUFFIX[suffix.lower()]
    return int(value) if what != "number" or suffix else value


def _as_bool(text: str, what: str) -> bool:
    if text in ("on", "yes", "true", "y"):
        return True
    if text in ("off", "no", "false", "n"):
        return False
    raise UsageError(f"Parameter '{what}' expects 'on' or 'off'")


def _at(d: Any, path: str) -> tuple[Any, Any] | None:
    """The container holding the value at dotted ``path`` and its key/index
    (list members as the schema errors name them, ``a[0].b``, or ``a.0.b``)."""
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    keys = path.split(".") if path else []
    node = d
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.get(k)
        if node is None:
            return None
    if not keys:
        return None
    last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
    return node, last


def typed_keyval(command: str, args: dict[str, Any],
                 validate: Callable[[str, dict], None] | None = None) -> dict[str, Any]:
    """Keyval strings as the types ``command``'s schema wants.

    QEMU's keyval input visitor converts each string when the visit reaches
    a scalar of another type; here the schema check tells where that is, one
    member at a time, until the arguments validate (or a string cannot be
    read as what is wanted, which is the user's error).
    """
    # The schema machinery is imported when a command line has keyval
    # options to type, not with this module: the CLI imports it, and
    # ``qmpd --help`` or a refused command line should not pay for it.
    from qmpd.schema import ArgumentError

    if validate is None:
        from qmpd.schema import validate
    for _ in range(1000):
        try:
            validate(command, args)
            return args
        except ArgumentError as e:
            desc = e.desc
        m = _TYPE_ERR.fullmatch(desc)
        want = m.group(2) if m else None
        path = m.group(1) if m else None
        if m is None:
            m2 = _UINT_ERR.fullmatch(desc)
            if m2 is None:
                raise UsageError(desc)
            path, want = m2.group(1), "integer"
        spot = _at(args, path or "")
        if spot is None:
            raise UsageError(desc)
        holder, key = spot
        value = holder[key]
        if not isinstance(value, str):
            raise UsageError(desc)
        if want == "boolean":
            holder[key] = _as_bool(value, path or "")
        elif want in ("integer", "number"):
            holder[key] = _as_number(value, path or "")
        else:
            raise UsageError(desc)
    raise UsageError(f"{command}: arguments could not be typed")


def option_dict(text: str, implied: str | None = None) -> tuple[dict[str, Any], bool]:
    """A JSON object (typed already) or keyval (strings): (dict, is_json)."""
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise UsageError(f"JSON parse error: {e}") from None
        if not isinstance(value, dict):
            raise UsageError("JSON value must be an object")
        return value, True
    return keyval(text, implied), False


# ---------------------------------------------------------------------------
# startup options

def blockdev_item(text: str) -> StartupItem:
    args, typed = option_dict(text, implied="driver")
    return StartupItem(f"-blockdev {text}", "blockdev-add", args, keyval=not typed)


def object_item(text: str) -> StartupItem:
    args, typed = option_dict(text, implied="qom-type")
    return StartupItem(f"-object {text}", "object-add", args, keyval=not typed)


def device_item(text: str) -> StartupItem:
    """``-device``: QemuOpts strings, which every release's property parsers
    take as text (``share-rw=on``).  JSON text (``{"driver": ...}``) is
    kept as it is: releases since 6.2 take it as typed JSON values, 5.2 as
    QemuOpts text (see :func:`device_args`)."""
    opts, warnings = qemu_opts(text, firstname="driver")
    return StartupItem(f"-device {text}", "device", {"text": text, "opts": opts},
                       warnings=warnings)


def device_args(item: StartupItem, json_option: bool) -> tuple[dict[str, Any], bool]:
    """A ``-device`` item's device_add arguments and whether they are typed:
    JSON for a release that reads JSON ``-device`` (``json_option``), else
    its QemuOpts strings."""
    text = item.args["text"]
    if json_option and text.startswith("{"):
        args, _ = option_dict(text)
        return args, True
    return item.args["opts"], False


def drive_item(text: str) -> StartupItem:
    """``-drive``: a legacy drive (a named BlockBackend over an opened image)."""
    # QemuOpts, not keyval: flat dotted keys, the last of a repeated key wins.
    opts, warnings = qemu_opts(text)
    return StartupItem(f"-drive {text}", "drive", opts, warnings=warnings)


def resolve_keyval(item: StartupItem,
                   validate: Callable[[str, dict], None] | None = None) -> dict[str, Any]:
    """The item's arguments with keyval strings typed (JSON ones as given),
    by the schema of ``validate`` (the daemon's release; 7.2 by default)."""
    if item.keyval:
        return typed_keyval(item.command, dict(item.args), validate)
    return item.args


__all__ = ["StartupItem", "qemu_opts", "help_probe", "machine_help", "device_help", "format_help",
           "keyval", "typed_keyval", "blockdev_item", "object_item", "device_item", "device_args",
           "drive_item", "resolve_keyval", "FORMATS"]
